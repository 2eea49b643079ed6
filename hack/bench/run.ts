// `npm run bench`: the seed scenario of issue 13, the controller against the best hand loop in one run
// on one engine: N replicas (default 45) of the sample workload from one checkpoint of M MB (default
// 200), at most 10 restores in flight, alternating
//   hand:       `docker create` + `cp -al` + a unique file + `docker start --checkpoint`, xargs -P 10;
//   controller: the compiled agent (`node --max-semi-space-size=2 dist/crs-agent.mjs`, as the image runs it),
//               `kubectl apply` until the resource is Ready=True,
// R times each (default 3). Reports medians and spread, controller/hand ratio, failed restores,
// restore copies left behind, time to the first ready replica, and draws ready replicas and restores
// in flight over time (an SVG). Regenerates its section of docs/benchmarks.md. A benchmark, not a test.
//   npm run bench                      # 45 x 200 MB, 3 alternations, writes docs/
//   npm run bench -- --quick           # 10 x 32 MB, 1 alternation, about a minute, writes .local/bench/
//   npm run bench -- --runs 1 --modes controller --out none   # one measurement, printed only
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import Docker from 'dockerode';
import { OWNER_NAMESPACE, OWNER_UID } from '../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../controller/api/types.js';
import { freeBytes } from '../../controller/engine/hygiene.js';
import { startAgent } from '../../test/integration/support/agent.js';
import { installCrd, kubectl } from '../../test/integration/support/kubectl.js';
import { bringUpTestbed } from '../../test/integration/support/testbed-env.js';
import { checkpointedSource, followEvents } from '../../test/integration/support/workload.js';
import { loadAverage, log, machine, median, processUsage, restoreCopiesSince, runMain, sampleRss, writeSection } from './common.js';
import { type Series, rolloutSvg } from './svg.js';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    replicas: { type: 'string' },
    'memory-mb': { type: 'string' },
    runs: { type: 'string' },
    limit: { type: 'string', default: '10' },
    modes: { type: 'string', default: 'hand,controller' },
    /** Where the markdown section goes; 'none' prints it only. Default: docs/benchmarks.md, or .local/bench/ with --quick. */
    out: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const replicas = Number(values.replicas ?? (quick ? 10 : 45));
const memoryMb = Number(values['memory-mb'] ?? (quick ? 32 : 200));
const runs = Number(values.runs ?? (quick ? 1 : 3));
const limit = Number(values.limit);
const modes = values.modes.split(',') as Mode[];
for (const [name, v] of [
  ['replicas', replicas],
  ['memory-mb', memoryMb],
  ['runs', runs],
  ['limit', limit],
] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name}: ${String(v)} must be a whole number >= 1`);
}
for (const m of modes) if (m !== 'hand' && m !== 'controller') throw new Error(`--modes: "${String(m)}" is neither hand nor controller`);
type Mode = 'hand' | 'controller';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const outDir = path.join(repoRoot, quick ? '.local/bench' : 'docs');
const outFile = values.out === 'none' ? undefined : path.resolve(repoRoot, values.out ?? path.join(outDir, 'benchmarks.md'));
const svgName = 'benchmarks-rollout.svg';
// The bench needs one engine; the multi-node engines would only cost CPU and disk.
process.env.NODES ??= '0';
const bed = bringUpTestbed(repoRoot);
const docker = new Docker({ socketPath: bed.dockerSocket });
const runId = Date.now().toString(36);
const benchLabel = 'checkpoint.dev/bench';

interface Measurement {
  mode: Mode;
  index: number;
  wallSeconds: number;
  /** From the first create (hand) or the apply (controller) to the first replica running / status.readyReplicas >= 1. */
  firstReadySeconds: number;
  /** The first replica's container started (engine event), both methods. */
  firstRunningSeconds: number;
  running: number;
  failedRestores: number;
  copiesLeftBytes: number;
  peakInFlight: number;
  /** Controller only: deleting the resource until its containers are gone. */
  deleteSeconds?: number;
  agent?: { peakRssMb: number; cpuSeconds: number };
  load: string;
  inFlight: Series;
  ready: Series;
}

/**
 * Follows the engine's event stream: a container is a restore in flight from its `create` until its
 * `start` (restored and running), `die` or `destroy`; `start` also counts it ready for the hand loop.
 */
async function timeline(filter: string[], t0: () => number) {
  const pending = new Set<string>();
  let running = 0;
  const inFlight: Series = [[0, 0]];
  const started: Series = [[0, 0]];
  let peak = 0;
  const follow = await followEvents(bed, { type: ['container'], label: filter }, (e) => {
    const t = (e.timeNano / 1e6 - t0()) / 1000;
    if (e.Action === 'create') pending.add(e.id);
    else if (e.Action === 'start' && pending.delete(e.id)) started.push([t, ++running]);
    else if (e.Action === 'die' || e.Action === 'destroy') pending.delete(e.id);
    else return;
    peak = Math.max(peak, pending.size);
    inFlight.push([t, pending.size]);
  });
  return { inFlight, started, peak: () => peak, stop: follow.stop };
}

/** The hand loop as a person writes it: one shell function per replica, 10 at a time through xargs. */
async function handLoop(index: number, source: { id: string; imageId: string }): Promise<Measurement> {
  const label = `${benchLabel}=${runId}-hand-${index}`;
  const dir = path.join(bed.dockerRoot, 'containers', source.id, 'checkpoints', 'warm');
  const script = `
set -u
one() {
  id=$(docker create --network none --label ${label} -e APP_MEMORY_MB=${memoryMb} ${source.imageId}) || { echo FAIL create; return; }
  mkdir -p "${bed.dockerRoot}/containers/$id/checkpoints"
  cp -al "${dir}" "${bed.dockerRoot}/containers/$id/checkpoints/warm"
  echo "$id" > "${bed.dockerRoot}/containers/$id/checkpoints/warm/replica-id"  # unique: its own upload digest
  # A failed restore's container is removed, as a careful loop does (and so it stops counting as in flight).
  if err=$(docker start --checkpoint warm "$id" 2>&1 >/dev/null); then echo OK; else echo "FAIL $err" | head -c 300; echo; docker rm -f "$id" >/dev/null; fi
}
export -f one
seq ${replicas} | xargs -P ${limit} -I{} bash -c one
`;
  let t0 = Date.now();
  const events = await timeline([label], () => t0);
  t0 = Date.now();
  const { stdout } = await run('bash', ['-c', script], { env: { ...process.env, DOCKER_HOST: bed.dockerHost }, maxBuffer: 16 << 20 });
  const wallSeconds = (Date.now() - t0) / 1000;
  const load = loadAverage();
  await new Promise((r) => setTimeout(r, 500)); // the last events
  events.stop();
  const failures = stdout.split('\n').filter((l) => l.startsWith('FAIL'));
  if (failures[0]) log(`hand loop: ${failures.length} failed, first: ${failures[0].slice(0, 200)}`);
  const running = (await docker.listContainers({ filters: { label: [label], status: ['running'] } })).length;
  const left = await restoreCopiesSince(bed.containerdTmp, t0, true); // measured, then reclaimed for the next run
  for (const c of await docker.listContainers({ all: true, filters: { label: [label] } })) await docker.getContainer(c.Id).remove({ force: true });
  return {
    mode: 'hand',
    index,
    wallSeconds,
    firstReadySeconds: events.started[1]?.[0] ?? NaN,
    firstRunningSeconds: events.started[1]?.[0] ?? NaN,
    running,
    failedRestores: failures.length,
    copiesLeftBytes: left.bytes,
    peakInFlight: events.peak(),
    load,
    inFlight: events.inFlight,
    ready: events.started,
  };
}

/** status.readyReplicas over time, from one `kubectl get --watch` (no polling). */
function watchReady(namespace: string, t0: () => number): { series: Series; stop(): void } {
  const series: Series = [[0, 0]];
  // Watches the namespace, not the resource: it does not exist yet when the watch starts.
  const child = spawn(bed.kubectl, ['-n', namespace, 'get', 'crs', '--watch', '-o', 'jsonpath={.metadata.name} {.status.readyReplicas}{"\\n"}'], {
    env: { ...process.env, KUBECONFIG: bed.kubeconfig },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const [name, readyText] = buffer.slice(0, nl).trim().split(' ');
      buffer = buffer.slice(nl + 1);
      const ready = Number(readyText ?? 0);
      if (name === 'app' && ready !== series.at(-1)?.[1]) series.push([(Date.now() - t0()) / 1000, ready]);
    }
  });
  return { series, stop: () => child.kill('SIGTERM') };
}

async function controller(index: number, sourceName: string): Promise<Measurement> {
  const k = kubectl(bed);
  const namespace = `bench-${runId}-${index}`;
  const nodeName = `bench-${runId}-${index}`;
  await k('create', 'namespace', namespace);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } }));
  const agent = await startAgent(bed, { nodeName, namespace, logLevel: 'info', maxConcurrentRestores: limit });
  await agent.ready();
  const pid = agent.process.pid ?? 0;
  const cpuBefore = (await processUsage(pid)).cpuSeconds;
  const rss = sampleRss(pid);
  let t0 = Date.now();
  const events = await timeline([`${OWNER_NAMESPACE}=${namespace}`], () => t0);
  const ready = watchReady(namespace, () => t0);
  t0 = Date.now();
  await k.apply(
    JSON.stringify({
      apiVersion: 'checkpoint.dev/v1alpha1',
      kind: 'CheckpointReplicaSet',
      metadata: { name: 'app', namespace },
      spec: {
        replicas,
        checkpoint: { container: sourceName, name: 'warm' },
        template: { image: bed.sampleImage, env: [{ name: 'APP_MEMORY_MB', value: String(memoryMb) }] },
        restore: { maxConcurrent: limit },
      },
    }),
  );
  await k('-n', namespace, 'wait', 'crs/app', '--for=condition=Ready', '--timeout=1800s');
  const wallSeconds = (Date.now() - t0) / 1000;
  const load = loadAverage();
  const usage = await processUsage(pid);
  rss.stop();
  const left = await restoreCopiesSince(bed.containerdTmp, t0, false);
  const crs = await k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', 'app');
  const metrics = await agent.metrics();
  // One series per failure reason: sum them all.
  const failures = metrics
    .split('\n')
    .filter((l) => l.startsWith('crs_restores_total{') && l.includes('result="failure"'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  const running = (await docker.listContainers({ filters: { label: [`${OWNER_UID}=${crs.metadata.uid}`], status: ['running'] } })).length;
  await new Promise((r) => setTimeout(r, 500));
  ready.stop();
  events.stop();
  const deleteStart = Date.now();
  await k('-n', namespace, 'delete', 'crs', 'app', '--timeout=600s');
  const deleteSeconds = (Date.now() - deleteStart) / 1000;
  await agent.kill('SIGTERM');
  await k('delete', 'namespace', namespace, '--wait=false');
  await k('delete', 'node', nodeName);
  await restoreCopiesSince(bed.containerdTmp, t0, true); // should be none; never let them pile up
  return {
    mode: 'controller',
    index,
    wallSeconds,
    firstReadySeconds: ready.series.find(([, n]) => n >= 1)?.[0] ?? NaN,
    firstRunningSeconds: events.started[1]?.[0] ?? NaN,
    running,
    failedRestores: failures,
    copiesLeftBytes: left.bytes,
    peakInFlight: events.peak(),
    deleteSeconds,
    agent: { peakRssMb: usage.peakRssMb, cpuSeconds: usage.cpuSeconds - cpuBefore },
    load,
    inFlight: events.inFlight,
    ready: ready.series,
  };
}

const f1 = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '' : x.toFixed(1));
const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
const spread = (xs: number[]): string => `${f1(median(xs))} (${f1(Math.min(...xs))} to ${f1(Math.max(...xs))})`;

function report(all: Measurement[], command: string, loadStart: string, svgFile: string | undefined): string {
  const label = { hand: 'hand loop (xargs -P 10, unique copies)', controller: 'controller (compiled agent, apply until Ready)' };
  const perRun = [
    '| run | method | wall time to all ready (s) | first ready (s) | first running (s) | running at end | failed restores | restore copies left (MB) | peak in flight | delete (s) | agent peak RSS (MB) | agent CPU (s) | load average (1/5/15 min) at the end |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...all.map(
      (m) =>
        `| ${m.index + 1} | ${m.mode} | ${f1(m.wallSeconds)} | ${f1(m.firstReadySeconds)} | ${f1(m.firstRunningSeconds)} | ${m.running} / ${replicas} | ${m.failedRestores} | ${mb(m.copiesLeftBytes)} | ${m.peakInFlight} | ${f1(m.deleteSeconds)} | ${m.agent ? m.agent.peakRssMb.toFixed(0) : ''} | ${f1(m.agent?.cpuSeconds)} | ${m.load} |`,
    ),
  ];
  const byMode = (mode: Mode) => all.filter((m) => m.mode === mode);
  const summary = [
    '| method | runs | wall time, median (min to max) (s) | first ready, median (s) | all running | failed restores | restore copies left (MB, total) |',
    '| --- | ---: | ---: | ---: | --- | ---: | ---: |',
    ...modes
      .filter((m, i) => modes.indexOf(m) === i)
      .map((mode) => {
        const ms = byMode(mode);
        return `| ${label[mode]} | ${ms.length} | ${spread(ms.map((m) => m.wallSeconds))} | ${f1(median(ms.map((m) => m.firstReadySeconds)))} | ${ms.every((m) => m.running === replicas) ? 'yes' : 'no'} | ${ms.reduce((n, m) => n + m.failedRestores, 0)} | ${mb(ms.reduce((n, m) => n + m.copiesLeftBytes, 0))} |`;
      }),
  ];
  const hand = median(byMode('hand').map((m) => m.wallSeconds));
  const ours = median(byMode('controller').map((m) => m.wallSeconds));
  const ratio =
    Number.isFinite(hand) && Number.isFinite(ours)
      ? `Controller / hand loop, median against median: **${(ours / hand).toFixed(2)}x** (goal: at most 0.75x; far mark: under 40 s for 45 x 200 MB).`
      : '';
  return `## Seed scenario: the controller against the best hand loop

Produced by \`${command}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${replicas} replicas of the sample
workload (hack/workload) from one checkpoint of ${memoryMb} MB on one Docker host, at most ${limit} restores in flight, the two
methods alternating (${runs} run${runs > 1 ? 's' : ''} each). Load average (1/5/15 min) when it began: ${loadStart}.
Wall time runs from the first \`docker create\` (hand loop) or the \`kubectl apply\` (controller) to the last replica
running (hand loop) or \`kubectl wait --for=condition=Ready\` returning (controller). First ready: the first replica running
(hand loop, engine event) or \`status.readyReplicas\` reaching 1 (controller, \`kubectl get --watch\`); first running: the first replica's
container started (engine event), for both. In flight: containers
created and not yet started, from the engine's event stream. Restore copies left: containerd's \`ctrd-checkpoint*\` folders
made during the run still on disk when it ended (the hand loop never removes them; the bench does, after measuring).
Agent: the compiled agent's peak RSS (VmHWM) and its CPU time during the rollout.

${summary.join('\n')}

${ratio}

${perRun.join('\n')}
${svgFile ? `\n![ready replicas and restores in flight over time, median runs](${svgFile})\n\nReady replicas and restores in flight over time, the median run of each method from this same invocation.\n` : ''}
### Machine

${machine(bed)}
`;
}

async function main(): Promise<void> {
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const loadStart = loadAverage();
  const free = await freeBytes([bed.dockerRoot, bed.containerdTmp]);
  const need = limit * memoryMb * 2 ** 20 * 3 + (modes.includes('hand') ? replicas * memoryMb * 2 ** 20 : 0);
  if (free.bytes < need)
    throw new Error(`not enough free disk on ${free.path}: ${mb(free.bytes)} MB free, this run needs about ${mb(need)} MB; lower --replicas or --memory-mb`);
  if (modes.includes('controller') && !values['no-build']) {
    log('npm run build (the controller runs compiled, as shipped)');
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit' });
  }
  process.env.CRS_AGENT_COMPILED = '1';
  await installCrd(bed);
  const sourceName = `bench-source-${runId}`;
  log(`checkpointing the sample workload (${memoryMb} MB) as ${sourceName}/warm`);
  const sourceId = await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: '*', memoryMb });
  const imageId = (await docker.getContainer(sourceId).inspect()).Image;
  const all: Measurement[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      for (const mode of modes) {
        log(`run ${i + 1}/${runs}: ${mode}, ${replicas} x ${memoryMb} MB (load ${loadAverage()})`);
        const m = mode === 'hand' ? await handLoop(i, { id: sourceId, imageId }) : await controller(i, sourceName);
        log(
          `  ${f1(m.wallSeconds)} s, first ready ${f1(m.firstReadySeconds)} s, ${m.running}/${replicas} running, ${m.failedRestores} failed, peak in flight ${m.peakInFlight}, copies left ${mb(m.copiesLeftBytes)} MB${m.agent ? `, agent peak ${m.agent.peakRssMb.toFixed(0)} MB, ${f1(m.agent.cpuSeconds)} s CPU, delete ${f1(m.deleteSeconds)} s` : ''}`,
        );
        all.push(m);
      }
    }
  } finally {
    await docker
      .getContainer(sourceName)
      .remove({ force: true })
      .catch(() => undefined);
  }
  // The picture shows the median run of each method.
  const pick = (mode: Mode) => {
    const ms = all.filter((m) => m.mode === mode).sort((a, b) => a.wallSeconds - b.wallSeconds);
    return ms[Math.floor((ms.length - 1) / 2)];
  };
  const lines = modes
    .filter((m, i) => modes.indexOf(m) === i)
    .map((mode) => ({ mode, m: pick(mode) }))
    .filter((x): x is { mode: Mode; m: Measurement } => x.m !== undefined)
    .map(({ mode, m }) => ({
      name: mode === 'hand' ? `hand loop (run ${m.index + 1})` : `controller (run ${m.index + 1})`,
      ready: m.ready,
      inFlight: m.inFlight,
      end: m.wallSeconds,
    }));
  const svg = rolloutSvg(lines, { replicas, limit, title: `${replicas} restores of one ${memoryMb} MB checkpoint, at most ${limit} in flight` });
  const text = report(all, command, loadStart, outFile ? svgName : undefined);
  if (outFile) {
    await mkdir(path.dirname(outFile), { recursive: true });
    await writeFile(path.join(path.dirname(outFile), svgName), svg);
    await writeSection(outFile, 'bench', text);
    log(`written to ${path.relative(repoRoot, outFile)} and ${svgName} beside it`);
  }
  await mkdir(path.join(repoRoot, '.local/bench'), { recursive: true });
  await writeFile(path.join(repoRoot, '.local/bench', `run-${runId}.json`), JSON.stringify({ command, replicas, memoryMb, limit, all }, null, 1));
  console.log(text);
}

runMain(main);
