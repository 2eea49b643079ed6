// `npm run bench:bootstrap`: issue 16's comparison on one engine, N replicas (default 10) of the sample
// workload of M MB (default 16) that spends W s of CPU warming up (default 10), three ways:
//   bootstrap: the agent, spec.checkpoint.bootstrap (1 cold start, warm-up, checkpoint, N-1 restores),
//              `kubectl apply` until Ready=True;
//   cold:      `docker run` of all N at once, until every one printed "ready" (their warm-ups contend for the CPU);
//   hand:      a person's checkpoint (run one, wait for "ready", `docker checkpoint create`), then the
//              agent restores N from it (spec.checkpoint.container), until Ready=True; timed from the `docker run`.
// Small by default on purpose: the machine is shared; the load average is recorded with each figure.
//   npm run bench:bootstrap -- --replicas 10 --memory-mb 16 --warmup 10 [--out none]
import path from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { RESTORE_INTO_NAMESPACES } from '../../controller/api/labels.js';
import { startAgent } from '../../test/integration/support/agent.js';
import { installCrd, kubectl } from '../../test/integration/support/kubectl.js';
import { bringUpTestbed } from '../../test/integration/support/testbed-env.js';
import { checkpointContainer } from '../../test/integration/support/workload.js';
import { loadAverage, log, machine, runMain, sleep, writeSection } from './common.js';

const { values } = parseArgs({
  options: {
    replicas: { type: 'string', default: '10' },
    'memory-mb': { type: 'string', default: '16' },
    warmup: { type: 'string', default: '10' },
    out: { type: 'string' },
    /** Which to run, comma-separated: bootstrap,cold,hand. */
    modes: { type: 'string', default: 'bootstrap,cold,hand' },
  },
});
const replicas = Number(values.replicas);
const memoryMb = Number(values['memory-mb']);
const warmup = Number(values.warmup);
const repoRoot = path.resolve(import.meta.dirname, '../..');
process.env.NODES ??= '0';
const bed = bringUpTestbed(repoRoot);
const docker = new Docker({ socketPath: bed.dockerSocket });
const k = kubectl(bed);
const runId = Date.now().toString(36);
const env = [`APP_MEMORY_MB=${memoryMb}`, `APP_WARMUP_SECONDS=${warmup}`];

interface Result {
  mode: string;
  seconds: number;
  load: string;
}

async function logsOf(c: Docker.Container): Promise<string> {
  return (await c.logs({ stdout: true, stderr: true })).toString();
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 900_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** The agent on a fresh Node and namespace; applies the spec and waits for Ready (seconds from the apply); cleans up. */
async function withAgent(mode: string, checkpoint: object): Promise<number> {
  const namespace = `bb-${runId}-${mode}`;
  await k('create', 'namespace', namespace);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: namespace } }));
  const agent = await startAgent(bed, { nodeName: namespace, namespace, logLevel: 'info' });
  await agent.ready();
  const start = Date.now();
  await k.apply(
    JSON.stringify({
      apiVersion: 'checkpoint.dev/v1alpha1',
      kind: 'CheckpointReplicaSet',
      metadata: { name: 'app', namespace },
      spec: {
        replicas,
        checkpoint,
        template: { image: bed.sampleImage, env: env.map((e) => ({ name: e.split('=')[0], value: e.split('=')[1] })) },
        restore: { maxConcurrent: 10, timeoutSeconds: 300 },
      },
    }),
  );
  await k('-n', namespace, 'wait', 'crs/app', '--for=condition=Ready', '--timeout=900s');
  const seconds = (Date.now() - start) / 1000;
  await k('-n', namespace, 'delete', 'crs', 'app', '--timeout=300s');
  await agent.kill('SIGTERM');
  await k('delete', 'namespace', namespace, '--wait=false');
  await k('delete', 'node', namespace);
  return seconds;
}

async function cold(): Promise<number> {
  const t0 = Date.now();
  const made = await Promise.all(
    Array.from({ length: replicas }, async () => {
      const c = await docker.createContainer({
        Image: bed.sampleImage,
        Env: env,
        HostConfig: { NetworkMode: 'none' },
        Labels: { 'checkpoint.dev/bench': runId },
      });
      await c.start();
      return c;
    }),
  );
  await until('every cold start ready', async () => (await Promise.all(made.map(logsOf))).every((l) => /\bready\b/.test(l)));
  const seconds = (Date.now() - t0) / 1000;
  for (const c of made) await c.remove({ force: true });
  return seconds;
}

/** The person's part (run, wait for ready, checkpoint) plus the agent's (apply to Ready); the agent's own start is not counted. */
async function hand(): Promise<number> {
  const t0 = Date.now();
  const name = `bb-${runId}-source`;
  const source = await docker.createContainer({
    name,
    Image: bed.sampleImage,
    Env: env,
    HostConfig: { NetworkMode: 'none' },
    Labels: { [RESTORE_INTO_NAMESPACES]: '*' },
  });
  await source.start();
  await until('the source ready', async () => /\bready\b/.test(await logsOf(source)));
  await checkpointContainer(source, 'warm');
  const handSeconds = (Date.now() - t0) / 1000;
  const seconds = handSeconds + (await withAgent('hand', { container: name, name: 'warm' }));
  await source.remove({ force: true });
  return seconds;
}

async function main(): Promise<void> {
  await installCrd(bed);
  const results: Result[] = [];
  const measure = async (mode: string, fn: () => Promise<number>): Promise<void> => {
    log(`${mode}: ${replicas} x ${memoryMb} MB, ${warmup} s warm-up`);
    const seconds = await fn();
    results.push({ mode, seconds, load: loadAverage() });
    log(`${mode}: ${seconds.toFixed(1)} s (load ${loadAverage()})`);
  };
  const modes = new Set(values.modes.split(','));
  if (modes.has('bootstrap')) await measure('bootstrap', () => withAgent('bootstrap', { bootstrap: { warmupSeconds: warmup + 2, timeoutSeconds: 600 } }));
  if (modes.has('cold')) await measure('cold start of all', cold);
  if (modes.has('hand')) await measure('hand checkpoint, then restores', hand);
  const body = [
    `### Checkpoint bootstrap (issue 16)`,
    '',
    `\`npm run bench:bootstrap -- --replicas ${replicas} --memory-mb ${memoryMb} --warmup ${warmup}\`: ${replicas} replicas of the sample (${memoryMb} MB, ${warmup} s of CPU warm-up), from \`kubectl apply\` (bootstrap), the first \`docker run\` (cold, hand) until all are ready. Bootstrap uses warmupSeconds ${warmup + 2} (the sample has no readiness probe without a TCP port); on a loaded host its CPU warm-up can outlast that, and the restores then finish it. One run each, on a shared machine (small numbers on purpose):`,
    '',
    '| method | seconds to all ready | load average (1/5/15 min) at the end |',
    '| --- | --- | --- |',
    ...results.map((r) => `| ${r.mode} | ${r.seconds.toFixed(1)} | ${r.load} |`),
    '',
    machine(bed),
  ].join('\n');
  if (values.out === 'none') console.log(body);
  else await writeSection(path.resolve(repoRoot, values.out ?? 'docs/benchmarks.md'), 'bench-bootstrap', body);
}

runMain(main);
