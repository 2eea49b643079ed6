// `npm run bench`: the original report's scenario (moby issue 29369), side by side in one run on one
// machine: N replicas (default 45) of the sample workload with a checkpoint of M MB (default 200).
//   0 cold start, no checkpoint, each replica warming up for W s of CPU (default 20)
//   1 naive: every restore at once
//   2 the usual workaround: at most 10 at a time, each failure retried (7 tries, 1 s apart)
//   3 a hand-written best loop: at most 10 at a time, a unique checkpoint copy per replica
//   4 this controller: kubectl apply until Ready=True
// Writes the table and the machine's details to docs/benchmarks.md. A benchmark, not a test.
//   npm run bench -- --replicas 45 --memory-mb 200 --warmup-seconds 20 --scenarios cold,naive,retry,unique,controller
import { execFileSync } from 'node:child_process';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { OWNER_UID } from '../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../controller/api/types.js';
import { startAgent } from '../../test/integration/support/agent.js';
import { installCrd, kubectl } from '../../test/integration/support/kubectl.js';
import { bringUpTestbed } from '../../test/integration/support/testbed-env.js';
import { checkpointedSource, containersWithLabel } from '../../test/integration/support/workload.js';
import { type PlainSource, plainRestore, pool } from './plain-docker.js';

const { values } = parseArgs({
  options: {
    replicas: { type: 'string', default: '45' },
    'memory-mb': { type: 'string', default: '200' },
    'warmup-seconds': { type: 'string', default: '20' },
    scenarios: { type: 'string', default: 'cold,naive,retry,unique,controller' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
  },
});
const replicas = Number(values.replicas);
const memoryMb = Number(values['memory-mb']);
const warmupSeconds = Number(values['warmup-seconds']);
const scenarios = new Set(values.scenarios.split(','));
const repoRoot = path.resolve(import.meta.dirname, '../..');
const bed = bringUpTestbed(repoRoot);
const docker = new Docker({ socketPath: bed.dockerSocket });
const benchLabel = 'checkpoint.dev/bench';
const runId = Date.now().toString(36);

interface Row {
  scenario: string;
  wallSeconds: number;
  failedRestores: number | string;
  retries: number | string;
  running: number;
  agent?: { peakRssMb: number; cpuSeconds: number };
}

async function runningCount(ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) if ((await docker.getContainer(id).inspect()).State.Running) n++;
  return n;
}

async function removeLabelled(key: string, value: string): Promise<void> {
  for (const c of await containersWithLabel(bed, key, value)) await docker.getContainer(c.id).remove({ force: true }).catch(() => undefined);
}

/** containerd leaks one ctrd-checkpoint* copy per restore (containerd issue 10166); the baselines do not reclaim them, so the bench does between scenarios. */
async function reclaimLeaks(since: number): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(bed.containerdTmp).catch(() => [])) {
    if (!entry.startsWith('ctrd-checkpoint')) continue;
    const dir = path.join(bed.containerdTmp, entry);
    const info = await stat(dir);
    if (info.mtimeMs < since) continue;
    bytes += Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
    await rm(dir, { recursive: true, force: true });
  }
  return bytes;
}

async function baseline(key: string, scenario: string, source: PlainSource, limit: number, unique: boolean, maxTries: number): Promise<Row> {
  const label = { [benchLabel]: `${runId}-${key}` };
  const started = Date.now();
  const outcomes = await pool(
    Array.from({ length: replicas }, (_, i) => i),
    limit,
    (i) => plainRestore(docker, bed.dockerRoot, source, `bench-${runId}-${key}-${i}`, { uniqueCopy: unique, maxTries, retryDelayMs: 1000, label }),
  );
  const wallSeconds = (Date.now() - started) / 1000;
  const running = await runningCount(outcomes.map((o) => o.containerId));
  const failedAttempts = outcomes.reduce((n, o) => n + o.errors.length, 0);
  const sampleError = outcomes.flatMap((o) => o.errors)[0];
  if (sampleError) console.log(`  ${key}: first error: ${sampleError.slice(0, 200)}`);
  await removeLabelled(benchLabel, label[benchLabel]);
  await reclaimLeaks(started);
  return {
    scenario,
    wallSeconds,
    failedRestores: failedAttempts,
    retries: outcomes.reduce((n, o) => n + o.attempts - 1, 0),
    running,
  };
}

async function coldStart(): Promise<Row> {
  const label = { [benchLabel]: `${runId}-cold` };
  const started = Date.now();
  const ids = await pool(Array.from({ length: replicas }, (_, i) => i), Infinity, async (i) => {
    const c = await docker.createContainer({
      name: `bench-${runId}-cold-${i}`,
      Image: bed.sampleImage,
      Env: [`APP_MEMORY_MB=${memoryMb}`, `APP_WARMUP_SECONDS=${warmupSeconds}`],
      Labels: label,
      HostConfig: { NetworkMode: 'none' },
    });
    await c.start();
    return c.id;
  });
  // Ready when it printed "ready": the warm-up is over.
  const pending = new Set(ids);
  while (pending.size > 0) {
    for (const id of [...pending]) {
      const logs = (await docker.getContainer(id).logs({ stdout: true, tail: 50 })).toString();
      if (/^ready$/m.test(logs.replace(/[^\x20-\x7e\n]/g, ''))) pending.delete(id);
    }
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 500));
  }
  const wallSeconds = (Date.now() - started) / 1000;
  const running = await runningCount(ids);
  await removeLabelled(benchLabel, label[benchLabel]);
  return { scenario: `0 cold start (${warmupSeconds} s CPU warm-up each)`, wallSeconds, failedRestores: 'n/a', retries: 'n/a', running };
}

async function controller(sourceName: string): Promise<Row> {
  const k = kubectl(bed);
  const namespace = `bench-${runId}`;
  const nodeName = `bench-${runId}`;
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } }));
  const agent = await startAgent(bed, { nodeName, namespace, logLevel: 'info' });
  await agent.ready();
  const pid = agent.process.pid ?? 0;
  const started = Date.now();
  await k.apply(
    JSON.stringify({
      apiVersion: 'checkpoint.dev/v1alpha1',
      kind: 'CheckpointReplicaSet',
      metadata: { name: 'app', namespace },
      spec: {
        replicas,
        checkpoint: { container: sourceName, name: 'warm' },
        template: { image: bed.sampleImage, env: [{ name: 'APP_MEMORY_MB', value: String(memoryMb) }] },
        restore: { maxConcurrent: 10 },
      },
    }),
  );
  await k('-n', namespace, 'wait', 'crs/app', '--for=condition=Ready', '--timeout=1800s');
  const wallSeconds = (Date.now() - started) / 1000;
  const crs = await k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', 'app');
  const metrics = await agent.metrics();
  const sum = (result: string) =>
    metrics
      .split('\n')
      .filter((l) => l.startsWith('crs_restores_total{') && l.includes(`result="${result}"`))
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  const agentUsage = await processUsage(pid);
  const running = (await containersWithLabel(bed, OWNER_UID, crs.metadata.uid)).filter((c) => c.state === 'running').length;
  await k('-n', namespace, 'delete', 'crs', 'app', '--timeout=300s');
  await agent.kill('SIGTERM');
  await k('delete', 'namespace', namespace, '--wait=false');
  await k('delete', 'node', nodeName);
  const failures = sum('failure');
  return {
    scenario: '4 this controller (kubectl apply until Ready=True)',
    wallSeconds,
    failedRestores: failures,
    retries: failures,
    running,
    agent: agentUsage,
  };
}

async function processUsage(pid: number): Promise<{ peakRssMb: number; cpuSeconds: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { peakRssMb: hwmKb / 1024, cpuSeconds: ticks / 100 };
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  const version = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { env: { ...process.env, DOCKER_HOST: bed.dockerHost } }).toString().trim().split('\n')[0];
    } catch {
      return 'unknown';
    }
  };
  return [
    `- CPU: ${os.cpus().length} x ${cpu}`,
    `- memory: ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; kernel ${os.release()}; ${version('sh', ['-c', '. /etc/os-release; echo $PRETTY_NAME'])}`,
    `- Docker ${version('docker', ['version', '-f', '{{.Server.Version}}'])}, CRIU ${(version('criu', ['--version']) ?? '').replace('Version: ', '')}, containerd ${(version("containerd", ["--version"]) ?? "").split(' ')[2] ?? ''}`,
    `- disk: ${version('sh', ['-c', `df -h --output=size,avail ${bed.dockerRoot} | tail -1`])} (size, free) under the Docker data root`,
    `- Node.js ${process.version}`,
  ].join('\n');
}

const rows: Row[] = [];
const sourceName = `bench-source-${runId}`;
console.log(`checkpointing the sample workload (${memoryMb} MB) as ${sourceName}/warm`);
const sourceId = await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: '*', memoryMb });
const source: PlainSource = { containerId: sourceId, checkpoint: 'warm', image: bed.sampleImage, env: [`APP_MEMORY_MB=${memoryMb}`] };
const plan: [string, () => Promise<Row>][] = [
  ['cold', coldStart],
  ['naive', () => baseline('naive', '1 naive: all at once', source, Infinity, false, 1)],
  ['retry', () => baseline('retry', '2 workaround: 10 at a time, 7 tries 1 s apart', source, 10, false, 7)],
  ['unique', () => baseline('unique', '3 best loop: 10 at a time, unique copies', source, 10, true, 1)],
  ['controller', () => controller(sourceName)],
];
for (const [key, scenario] of plan) {
  if (!scenarios.has(key)) continue;
  console.log(`running ${key} ...`);
  const row = await scenario();
  console.log(`  ${row.scenario}: ${row.wallSeconds.toFixed(1)} s, ${row.running}/${replicas} running, failed restores ${row.failedRestores}`);
  rows.push(row);
}
await docker.getContainer(sourceName).remove({ force: true });

// Figures measured by other means (e.g. the multi-node e2e) follow this marker; a rerun keeps them.
const KEEP_MARKER = '<!-- sections below are not written by hack/bench/run.ts -->';
async function keptSections(file: string): Promise<string> {
  const old = await readFile(file, 'utf8').catch(() => '');
  const at = old.indexOf(KEEP_MARKER);
  return at < 0 ? '' : `\n${old.slice(at)}`;
}

const best = rows.find((r) => r.scenario.startsWith('3'));
const ours = rows.find((r) => r.scenario.startsWith('4'));
const table = [
  '| scenario | wall time to all ready (s) | failed restores | retries | running at end | agent peak RSS (MB) | agent CPU (s) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    (r) =>
      `| ${r.scenario} | ${r.wallSeconds.toFixed(1)} | ${r.failedRestores} | ${r.retries} | ${r.running} / ${replicas} | ${r.agent ? r.agent.peakRssMb.toFixed(0) : ''} | ${r.agent ? r.agent.cpuSeconds.toFixed(1) : ''} |`,
  ),
].join('\n');
const ratio = best && ours ? `\nController / best loop wall time: ${(ours.wallSeconds / best.wallSeconds).toFixed(2)}x (target: at most 1.10x).\n` : '';
const doc = `# Benchmarks

Produced by \`npm run bench -- --replicas ${replicas} --memory-mb ${memoryMb} --warmup-seconds ${warmupSeconds} --scenarios ${values.scenarios}\`
on ${new Date().toISOString().slice(0, 10)}. ${replicas} replicas of the sample workload (hack/workload) from one checkpoint of
${memoryMb} MB, all on one Docker host; "wall time" runs from the first create to the last replica running (restores) or
printing "ready" (cold start). The agent's figures are the whole agent process (/proc VmHWM and user+system CPU).

${table}
${ratio}
## Machine

${machine()}
${await keptSections(path.join(repoRoot, values.out))}`;
await writeFile(path.join(repoRoot, values.out), doc);
console.log(`\n${table}\n${ratio}\nwritten to ${values.out}`);
process.exit(0);
