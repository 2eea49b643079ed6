// Issue 4's measurement: N restores (default 45) of one M MB checkpoint (default 200) through the
// restore engine at its limit of 10, against a plain shell loop (`docker create` + `cp -al` +
// `docker start --checkpoint`, 10 at a time through xargs -P 10), in the same run on the same engine.
// A benchmark, not a test. Prints a markdown table; cleans up everything it made.
//   npx tsx hack/bench/engine-vs-shell.ts [--replicas 45] [--memory-mb 200] [--limit 10] [--order engine,shell]
// Needs the test bed's Docker engine (hack/engine-up.sh) and, at worst, about 25 GB of free disk:
// the shell loop leaks one checkpoint-sized ctrd-checkpoint copy per successful restore until clean-up.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import Docker from 'dockerode';
import { OWNER_UID, RESTORE_INTO_NAMESPACES } from '../../controller/api/labels.js';
import { createDockerEngine } from '../../controller/engine/docker-engine.js';
import { findMarkedCopies, folderBytes, freeBytes } from '../../controller/engine/hygiene.js';
import type { ReplicaSpec } from '../../controller/engine/types.js';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    replicas: { type: 'string', default: '45' },
    'memory-mb': { type: 'string', default: '200' },
    limit: { type: 'string', default: '10' },
    order: { type: 'string', default: 'engine,shell' },
  },
});
const replicas = Number(values.replicas);
const memoryMb = Number(values['memory-mb']);
const limit = Number(values.limit);
const order = values.order.split(',');
for (const [name, v] of [
  ['replicas', replicas],
  ['memory-mb', memoryMb],
  ['limit', limit],
] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name}: ${v} must be a whole number >= 1`);
}

const repoRoot = path.resolve(import.meta.dirname, '../..');
const env = readEnv(path.join(repoRoot, '.local/testbed.env'));
const dockerSocket = env['DOCKER_SOCKET'] ?? '/run/crs-docker/docker.sock';
const dockerRoot = env['DOCKER_ROOT'] ?? '/var/lib/crs-docker';
const containerdTmp = env['CONTAINERD_TMP'] ?? path.join(dockerRoot, 'containerd-tmp');
const sampleImage = env['SAMPLE_IMAGE'] ?? 'crs-sample-app:latest';
const dockerEnv = { ...process.env, DOCKER_HOST: `unix://${dockerSocket}` };
const docker = new Docker({ socketPath: dockerSocket });
const runId = `engine-vs-shell-${Date.now().toString(36)}`;
const benchLabel = 'checkpoint.dev/bench';

function readEnv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const m = /^(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) out[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
  }
  return out;
}

const log = (msg: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const gb = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GB`;

interface Row {
  method: string;
  wallSeconds: number;
  failed: number;
  running: number;
  leakedBytes: number;
  note: string;
}

async function makeSource(): Promise<{ id: string; name: string; imageId: string; dir: string }> {
  const name = `${runId}-src`;
  const c = await docker.createContainer({
    name,
    Image: sampleImage,
    Env: [`APP_MEMORY_MB=${memoryMb}`],
    Labels: { [RESTORE_INTO_NAMESPACES]: 'bench', [benchLabel]: `${runId}-source` },
    HostConfig: { NetworkMode: 'none' },
  });
  await c.start();
  for (let i = 0; !/^counter 2$/m.test((await c.logs({ stdout: true, stderr: true })).toString('latin1')); i++) {
    if (i > 600) throw new Error(`source ${name} did not become ready in 120 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await (c as Docker.Container & { createCheckpoint(o: { CheckpointID: string; Exit: boolean }): Promise<unknown> }).createCheckpoint({
    CheckpointID: 'bench',
    Exit: true,
  });
  const info = await c.inspect();
  return { id: c.id, name, imageId: info.Image, dir: path.join(dockerRoot, 'containers', c.id, 'checkpoints', 'bench') };
}

async function runningWithLabel(label: string): Promise<number> {
  return (await docker.listContainers({ filters: { label: [label], status: ['running'] } })).length;
}

async function viaEngine(source: { name: string; imageId: string }): Promise<Row> {
  const engine = await createDockerEngine({ dockerSocket, dockerRoot, containerdTmp, node: os.hostname(), concurrencyLimit: limit, stopTimeoutSeconds: 1 });
  const owner = { uid: randomUUID(), namespace: 'bench', name: runId };
  let peak = 0;
  engine.onEvent((e) => {
    if (e.type === 'restore.started') peak = Math.max(peak, e.inFlight);
  });
  const spec = (i: number): ReplicaSpec => ({
    owner,
    node: os.hostname(),
    replicaId: `r${i}`,
    attempt: 1,
    templateHash: 'bench',
    template: { image: source.imageId, env: [{ name: 'APP_MEMORY_MB', value: String(memoryMb) }] },
    checkpoint: { container: source.name, name: 'bench' },
  });
  const t0 = performance.now();
  const results = await Promise.allSettled(Array.from({ length: replicas }, (_, i) => engine.restoreReplica(spec(i), { timeoutMs: 300_000 })));
  const wallSeconds = (performance.now() - t0) / 1000;
  const failures = results.filter((r) => r.status === 'rejected');
  for (const f of failures.slice(0, 3)) log(`engine failure: ${String(f.reason)}`);
  const running = await runningWithLabel(`${OWNER_UID}=${owner.uid}`);
  const leaked = (await findMarkedCopies(containerdTmp)).filter((c) => c.marker?.ownerUid === owner.uid);
  let leakedBytes = 0;
  for (const c of leaked) leakedBytes += await folderBytes(c.dir);
  for (const r of await engine.listReplicas(owner.uid)) await engine.removeReplica(owner.uid, r.containerId);
  await engine.close();
  return { method: `restore engine, limit ${limit}`, wallSeconds, failed: failures.length, running, leakedBytes, note: `peak in flight ${peak}` };
}

/** The shell loop as people write it; the identical run marker keeps copies identical (as cp -al makes them) but traceable. */
async function viaShell(source: { imageId: string; dir: string }): Promise<Row> {
  const script = `
set -u
one() {
  id=$(docker create --network none --label ${benchLabel}=${runId} -e APP_MEMORY_MB=${memoryMb} ${source.imageId}) || { echo FAIL create; return; }
  mkdir -p "${dockerRoot}/containers/$id/checkpoints"
  cp -al "${source.dir}" "${dockerRoot}/containers/$id/checkpoints/bench"
  echo ${runId} > "${dockerRoot}/containers/$id/checkpoints/bench/run-marker"
  if docker start --checkpoint bench "$id" >/dev/null 2>"/tmp/${runId}-$id.err"; then echo OK; else echo "FAIL $(head -c 300 /tmp/${runId}-$id.err)"; fi
  rm -f "/tmp/${runId}-$id.err"
}
export -f one
seq ${replicas} | xargs -P ${limit} -I{} bash -c one
`;
  const t0 = performance.now();
  const { stdout } = await run('bash', ['-c', script], { env: dockerEnv, maxBuffer: 16 * 2 ** 20 });
  const wallSeconds = (performance.now() - t0) / 1000;
  const lines = stdout.trim().split('\n');
  const failures = lines.filter((l) => l.startsWith('FAIL'));
  const kinds = new Set(failures.map((f) => (/already exists/.test(f) ? 'containerd "commit failed: content ... already exists"' : f.slice(0, 120))));
  const running = await runningWithLabel(`${benchLabel}=${runId}`);
  let leakedBytes = 0;
  for (const name of await fs.readdir(containerdTmp)) {
    const dir = path.join(containerdTmp, name);
    if ((await fs.readFile(path.join(dir, 'run-marker'), 'utf8').catch(() => '')).trim() === runId) leakedBytes += await folderBytes(dir);
  }
  return { method: `shell loop, ${limit} at a time`, wallSeconds, failed: failures.length, running, leakedBytes, note: [...kinds].join('; ') };
}

async function cleanUp(): Promise<void> {
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${benchLabel}=${runId}`] } })) {
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => undefined);
  }
  for (const name of await fs.readdir(containerdTmp)) {
    const dir = path.join(containerdTmp, name);
    if ((await fs.readFile(path.join(dir, 'run-marker'), 'utf8').catch(() => '')).trim() === runId) await fs.rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const free = await freeBytes([dockerRoot, containerdTmp]);
  const worst = replicas * memoryMb * 2 ** 20 * 2.5;
  log(`free disk ${gb(free.bytes)} on ${free.path}; this run needs up to ${gb(worst)}`);
  if (free.bytes < worst)
    throw new Error(`not enough free disk: ${gb(free.bytes)} free on ${free.path}, need about ${gb(worst)}; lower --replicas or --memory-mb`);
  const source = await makeSource();
  const rows: Row[] = [];
  try {
    for (const method of order) {
      log(`${method}: ${replicas} restores of a ${memoryMb} MB checkpoint`);
      const row = method === 'engine' ? await viaEngine(source) : await viaShell(source);
      log(`${method}: ${row.wallSeconds.toFixed(1)} s, ${row.failed} failed, ${row.running}/${replicas} running`);
      rows.push(row);
      await cleanUp();
    }
  } finally {
    await cleanUp();
  }
  const du = await folderBytes(source.dir);
  await docker.getContainer(source.id).remove({ force: true });
  console.log(
    `\n${replicas} restores of one ${memoryMb} MB checkpoint (${(du / 2 ** 20).toFixed(0)} MiB of CRIU images), ${limit} at a time, same run, same engine`,
  );
  console.log(`(Docker ${(await docker.version()).Version}, ${os.cpus().length} cores, ${os.hostname()}, order: ${order.join(' then ')})\n`);
  console.log('| method | wall time | restores failed | running at end | checkpoint copies left on disk | notes |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows)
    console.log(`| ${r.method} | ${r.wallSeconds.toFixed(1)} s | ${r.failed} | ${r.running} / ${replicas} | ${gb(r.leakedBytes)} | ${r.note} |`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
