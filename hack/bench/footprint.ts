// `npm run bench:footprint`: the agent's footprint as shipped (the compiled `node --max-semi-space-size=2 dist/crs-agent.mjs`,
// the shipped defaults but for the flags a local run needs), against the real test bed:
//   rollout: one resource of N x M MB (default 45 x 200) until Ready: peak RSS and CPU; then idle
//            for S seconds (default 60) with the replicas running: RSS and CPU; then the delete time;
//   many:    K resources of 1 replica each (default 1000) of a tiny checkpoint (APP_MEMORY_MB=1) on
//            one node: peak RSS, time to converge all, reconcile throughput, status writes per second
//            (from the apiserver's own request counter), RSS and CPU idle afterwards, delete time.
// Regenerates its section of docs/benchmarks.md. A benchmark, not a test.
//   npm run bench:footprint
//   npm run bench:footprint -- --parts many --resources 200 --out none
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { type RunningAgent, startAgent } from '../../test/integration/support/agent.js';
import { installCrd, kubectl } from '../../test/integration/support/kubectl.js';
import { bringUpTestbed } from '../../test/integration/support/testbed-env.js';
import { checkpointedSource } from '../../test/integration/support/workload.js';
import { loadAverage, log, machine, processUsage, restoreCopiesSince, runMain, sampleRss, sleep, writeSection } from './common.js';

const { values } = parseArgs({
  options: {
    parts: { type: 'string', default: 'rollout,many' },
    replicas: { type: 'string', default: '45' },
    'memory-mb': { type: 'string', default: '200' },
    'idle-seconds': { type: 'string', default: '60' },
    resources: { type: 'string', default: '1000' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
    'no-build': { type: 'boolean', default: false },
    /** NODE_OPTIONS for the agent, to try V8 settings (e.g. --max-semi-space-size=1) without changing the image. */
    'agent-node-options': { type: 'string' },
    /** Run the bundle with plain `node`: without the image's --max-semi-space-size and MALLOC_ARENA_MAX (to measure them). */
    'plain-node': { type: 'boolean', default: false },
  },
});
const parts = new Set(values.parts.split(','));
const replicas = Number(values.replicas);
const memoryMb = Number(values['memory-mb']);
const idleSeconds = Number(values['idle-seconds']);
const resources = Number(values.resources);
for (const [name, v] of [
  ['replicas', replicas],
  ['memory-mb', memoryMb],
  ['idle-seconds', idleSeconds],
  ['resources', resources],
] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name}: ${v} must be a whole number >= 1`);
}
const repoRoot = path.resolve(import.meta.dirname, '../..');
process.env.NODES ??= '0';
const bed = bringUpTestbed(repoRoot);
const docker = new Docker({ socketPath: bed.dockerSocket });
const k = kubectl(bed);
const runId = Date.now().toString(36);
const f1 = (x: number): string => x.toFixed(1);

/** One agent as shipped for one namespace; its process is what is measured. */
async function agentFor(namespace: string, nodeName: string, extra: string[] = []): Promise<RunningAgent> {
  await k('create', 'namespace', namespace);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } }));
  // resync 300 s and log level info are the shipped defaults (startAgent's test defaults differ).
  const nodeOptions = values['agent-node-options'];
  const agent = await startAgent(bed, {
    nodeName,
    namespace,
    logLevel: 'info',
    resyncSeconds: 300,
    args: extra,
    plainNode: values['plain-node'],
    ...(nodeOptions ? { env: { NODE_OPTIONS: nodeOptions } } : {}),
  });
  await agent.ready();
  return agent;
}

async function tearDown(agent: RunningAgent, namespace: string, nodeName: string, since: number): Promise<number> {
  const t = Date.now();
  await k('-n', namespace, 'delete', 'crs', '--all', '--timeout=1200s');
  const seconds = (Date.now() - t) / 1000;
  await agent.kill('SIGTERM');
  await k('delete', 'namespace', namespace, '--wait=false');
  await k('delete', 'node', nodeName);
  await restoreCopiesSince(bed.containerdTmp, since, true);
  return seconds;
}

function resource(namespace: string, name: string, n: number, source: string, mb: number): object {
  return {
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace },
    spec: {
      replicas: n,
      checkpoint: { container: source, name: 'warm' },
      template: { image: bed.sampleImage, env: [{ name: 'APP_MEMORY_MB', value: String(mb) }] },
      restore: { maxConcurrent: 10 },
    },
  };
}

/** CPU seconds and RSS of the agent over `seconds` of doing nothing asked of it. */
async function idle(pid: number, seconds: number): Promise<{ cpuSeconds: number; rssMb: number }> {
  const before = await processUsage(pid);
  await sleep(seconds * 1000);
  const after = await processUsage(pid);
  return { cpuSeconds: after.cpuSeconds - before.cpuSeconds, rssMb: after.rssMb };
}

async function rollout(): Promise<string> {
  const namespace = `footprint-${runId}`;
  const source = `footprint-src-${runId}`;
  log(`rollout: checkpointing ${memoryMb} MB`);
  await checkpointedSource(bed, { containerName: source, checkpointName: 'warm', allowNamespaces: '*', memoryMb });
  const agent = await agentFor(namespace, namespace);
  const pid = agent.process.pid ?? 0;
  const start = await processUsage(pid);
  const t0 = Date.now();
  log(`rollout: ${replicas} x ${memoryMb} MB (load ${loadAverage()})`);
  await k.apply(JSON.stringify(resource(namespace, 'app', replicas, source, memoryMb)));
  await k('-n', namespace, 'wait', 'crs/app', '--for=condition=Ready', '--timeout=1800s');
  const wall = (Date.now() - t0) / 1000;
  const done = await processUsage(pid);
  const load = loadAverage();
  log(`rollout: ${f1(wall)} s, peak RSS ${f1(done.peakRssMb)} MB; idle ${idleSeconds} s`);
  const quiet = await idle(pid, idleSeconds);
  const deleteSeconds = await tearDown(agent, namespace, namespace, t0);
  await docker.getContainer(source).remove({ force: true });
  return [
    `| ${replicas} x ${memoryMb} MB, one resource: rollout until Ready | ${f1(wall)} s | ${f1(start.rssMb)} | ${f1(done.peakRssMb)} | ${f1(done.cpuSeconds - start.cpuSeconds)} s | ${load} |`,
    `| then idle ${idleSeconds} s, ${replicas} replicas running | | ${f1(quiet.rssMb)} (at the end) | | ${quiet.cpuSeconds.toFixed(2)} s (${((quiet.cpuSeconds / idleSeconds) * 100).toFixed(2)} % of a core) | ${loadAverage()} |`,
    `| then \`kubectl delete crs\` until gone | ${f1(deleteSeconds)} s | | | | |`,
  ].join('\n');
}

/** The apiserver's count of writes to the resources' status subresource (any verb that writes). */
async function statusWrites(): Promise<number> {
  const text = await k('get', '--raw', '/metrics');
  return text
    .split('\n')
    .filter(
      (l) =>
        l.startsWith('apiserver_request_total{') &&
        l.includes('resource="checkpointreplicasets"') &&
        l.includes('subresource="status"') &&
        /verb="(PUT|PATCH|APPLY|POST)"/.test(l),
    )
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

const sumOf = (metrics: string, name: string): number =>
  metrics
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);

async function readyCount(namespace: string): Promise<number> {
  const out = await k('-n', namespace, 'get', 'crs', '-o', 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}');
  return out.split('\n').filter((l) => l.trim() === 'True').length;
}

async function many(): Promise<string> {
  const namespace = `footprint-many-${runId}`;
  const source = `footprint-tiny-${runId}`;
  log(`many: checkpointing a 1 MB workload`);
  await checkpointedSource(bed, { containerName: source, checkpointName: 'warm', allowNamespaces: '*', memoryMb: 1 });
  // The shipped cap of 500 replicas per host would stop at 500 of the 1000.
  const agent = await agentFor(namespace, namespace, [`--max-replicas-per-host=${resources + 10}`]);
  const pid = agent.process.pid ?? 0;
  const rss = sampleRss(pid, 1000);
  const start = await processUsage(pid);
  const writesBefore = await statusWrites();
  const reconcilesBefore = sumOf(await agent.metrics(), 'crs_reconcile_total');
  const items = Array.from({ length: resources }, (_, i) => resource(namespace, `r${i}`, 1, source, 1));
  const t0 = Date.now();
  log(`many: applying ${resources} resources of 1 replica (load ${loadAverage()})`);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }), '--server-side');
  const appliedSeconds = (Date.now() - t0) / 1000;
  let ready = 0;
  let lastChange = Date.now();
  while (ready < resources) {
    await sleep(5000);
    const now = await readyCount(namespace);
    if (now !== ready) lastChange = Date.now();
    ready = now;
    log(`many: ${ready}/${resources} Ready after ${f1((Date.now() - t0) / 1000)} s, agent RSS ${f1((await processUsage(pid)).rssMb)} MB`);
    if (Date.now() - lastChange > 300_000) throw new Error(`many: stuck at ${ready}/${resources} Ready for 5 minutes; see ${agent.logFile}`);
  }
  const converge = (Date.now() - t0) / 1000;
  const done = await processUsage(pid);
  const writes = (await statusWrites()) - writesBefore;
  const reconciles = sumOf(await agent.metrics(), 'crs_reconcile_total') - reconcilesBefore;
  const load = loadAverage();
  const quiet = await idle(pid, idleSeconds);
  const sampledPeak = rss.stop();
  const deleteSeconds = await tearDown(agent, namespace, namespace, t0);
  await docker.getContainer(source).remove({ force: true });
  return [
    `| ${resources} resources x 1 replica (1 MB), one node: apply (${f1(appliedSeconds)} s) until all Ready | ${f1(converge)} s | ${f1(start.rssMb)} | ${f1(Math.max(done.peakRssMb, sampledPeak))} | ${f1(done.cpuSeconds - start.cpuSeconds)} s | ${load} |`,
    `| reconciles / status writes during it | ${reconciles} reconciles (${f1(reconciles / converge)}/s) / ${writes} status writes (${f1(writes / converge)}/s) | | | | |`,
    `| then idle ${idleSeconds} s, ${resources} replicas running | | ${f1(quiet.rssMb)} (at the end) | | ${quiet.cpuSeconds.toFixed(2)} s (${((quiet.cpuSeconds / idleSeconds) * 100).toFixed(2)} % of a core) | ${loadAverage()} |`,
    `| then \`kubectl delete crs --all\` until gone | ${f1(deleteSeconds)} s | | | | |`,
  ].join('\n');
}

async function main(): Promise<void> {
  const command = `npm run bench:footprint${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const loadStart = loadAverage();
  if (!values['no-build']) execFileSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit' });
  process.env.CRS_AGENT_COMPILED = '1';
  await installCrd(bed);
  const rows: string[] = [];
  if (parts.has('rollout')) rows.push(await rollout());
  if (parts.has('many')) rows.push(await many());
  const text = `## The agent's footprint as shipped

Produced by \`${command}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. The shipped bundle
(${values['plain-node'] ? "`node dist/crs-agent.mjs`: plain node, WITHOUT the image's node flags and ENV" : '`node --max-semi-space-size=2 dist/crs-agent.mjs` with MALLOC_ARENA_MAX=2, as the image runs it'}) with the shipped defaults (log level info, resync 300 s, 4 workers)
watching one namespace, against the test bed's real apiserver and engine. RSS from /proc (VmRSS; peak = VmHWM),
CPU = user + system time of the agent process. Status writes: the apiserver's own \`apiserver_request_total\` for
\`checkpointreplicasets/status\`. Load average (1/5/15 min) when it began: ${loadStart}; the machine (below) may be
shared with other work, which the load average shows: times and CPU are then upper bounds, RSS is the agent's own.
Goals (issue 13): peak RSS at most 100 MB in the rollout, at most 150 MB with 1000 resources, idle CPU about 0.

| what | time / count | RSS at start (MB) | peak RSS (MB) | agent CPU | load average at the end |
| --- | ---: | ---: | ---: | ---: | --- |
${rows.join('\n')}

${machine(bed)}
`;
  if (values.out !== 'none') await writeSection(path.resolve(repoRoot, values.out), 'footprint', text);
  console.log(text);
}

runMain(main);
