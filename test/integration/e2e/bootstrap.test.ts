// Checkpoint bootstrap (issue 16), end to end: the real agent against the real apiserver and the
// real Docker engine with CRIU. The node has only the image: the agent starts one replica cold,
// lets it warm up, checkpoints it without stopping it, and restores the others from that checkpoint.
// The sample serves no TCP port here (APP_HTTP_PORT=0): a listening socket must be checkpointed
// quiescent (docs/serving.md), which bootstrap does not do. 5 replicas, not the 45: the same
// paths in a fraction of the CI time (the 45-replica run is a benchmark, docs/benchmarks.md).
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID, START_MODE, TEMPLATE_HASH } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { BOOTSTRAP_FOLDER } from '../../../controller/engine/bootstrap.js';
import { eventually } from '../kube/helpers.js';
import { type RunningAgent, sample, serviceAccountKubeconfig, startAgent } from '../support/agent.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { containersWithLabel, dockerClient, followEvents } from '../support/workload.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);
const stamp = Date.now().toString(36);
const namespace = `boot-${stamp}`;
const node = `boot-node-${stamp}`;
let agent: RunningAgent | undefined;

interface Extra {
  replicas: number;
  mark?: string;
  neverReady?: boolean;
  warmupSeconds?: number;
  paused?: boolean;
}

function manifest(name: string, extra: Extra): string {
  return JSON.stringify({
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace },
    spec: {
      replicas: extra.replicas,
      checkpoint: { bootstrap: { warmupSeconds: extra.warmupSeconds ?? 3, timeoutSeconds: 30 } },
      ...(extra.paused ? { paused: true } : {}),
      template: {
        image: bed.sampleImage,
        env: [
          { name: 'APP_MEMORY_MB', value: '8' },
          { name: 'APP_WARMUP_SECONDS', value: '1' },
          { name: 'APP_HTTP_PORT', value: '0' },
          { name: 'MARK', value: extra.mark ?? '1' },
        ],
        // Never ready: the probe's command always fails (the sample refuses an unknown argument).
        ...(extra.neverReady ? { readinessProbe: { exec: { command: ['/app', 'not-ready'] }, periodSeconds: 1, failureThreshold: 3, timeoutSeconds: 2 } } : {}),
      },
      restore: { maxConcurrent: 10, timeoutSeconds: 60, maxAttempts: 3 },
    },
  });
}

async function get(name: string): Promise<CheckpointReplicaSet> {
  return k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', name);
}

async function events(name: string): Promise<string> {
  const list = await k.json<{ items: { reason: string; message: string }[] }>(
    '-n',
    namespace,
    'get',
    'events',
    '--field-selector',
    `involvedObject.name=${name}`,
  );
  return list.items.map((e) => `${e.reason}: ${e.message}`).join('\n');
}

async function logsOf(id: string): Promise<string> {
  return (await dockerClient(bed).getContainer(id).logs({ stdout: true, stderr: true })).toString();
}

function counters(logs: string): number[] {
  return [...logs.matchAll(/counter (\d+)/g)].map((m) => Number(m[1]));
}

/** The folder of this namespace's bootstrap checkpoints on the bed's engine. */
const nsFolder = (): string => path.join(bed.dockerRoot, BOOTSTRAP_FOLDER, namespace);

async function entries(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[])).sort();
}

/** Replicas of uid by start mode and template hash. */
async function byMode(uid: string): Promise<{ mode: string; hash: string; id: string; state: string }[]> {
  return (await containersWithLabel(bed, OWNER_UID, uid)).map((c) => ({
    mode: c.labels[START_MODE] ?? '',
    hash: c.labels[TEMPLATE_HASH] ?? '',
    id: c.id,
    state: c.state,
  }));
}

beforeAll(async () => {
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } }));
  const kubeconfig = await serviceAccountKubeconfig(bed, k);
  agent = await startAgent(bed, { nodeName: node, namespace, kubeconfig });
  await agent.ready();
}, 120_000);

afterAll(async () => {
  await agent?.kill('SIGTERM');
  await k('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
  await k('delete', 'node', node).catch(() => undefined);
  const docker = dockerClient(bed);
  for (const c of await containersWithLabel(bed, 'checkpoint.dev/owner-namespace', namespace)) {
    await docker
      .getContainer(c.id)
      .remove({ force: true })
      .catch(() => undefined);
  }
  await fs.rm(nsFolder(), { recursive: true, force: true });
});

describe('checkpoint bootstrap on a node that has only the image', () => {
  let uid = '';
  let firstHash = '';

  it('brings up N replicas from 1 cold start and N-1 restores that continue its counter', async () => {
    await k.apply(manifest('app', { replicas: 5 }));
    uid = (await get('app')).metadata.uid;
    await k('-n', namespace, 'wait', 'crs/app', '--for=condition=Ready', '--timeout=180s');
    const replicas = await byMode(uid);
    expect(replicas.map((r) => r.mode).sort()).toEqual(['bootstrap', 'restore', 'restore', 'restore', 'restore']);
    expect(replicas.every((r) => r.state === 'running')).toBe(true);
    firstHash = replicas[0]!.hash;

    const status = (await get('app')).status?.nodes?.find((n) => n.node === node);
    expect(status?.bootstrap).toMatchObject({ phase: 'Ready', templateHash: firstHash });
    expect(status?.bootstrap?.checkpointSizeBytes).toBeGreaterThan(8 * 2 ** 20);
    expect(Date.parse(status?.bootstrap?.checkpointCreated ?? '')).toBeGreaterThan(0);
    expect(await entries(path.join(nsFolder(), 'app', uid))).toEqual([firstHash]);

    // The bootstrap replica ran cold (it allocated); every restore continues its counter where the
    // checkpoint was taken (no "allocated", and a first counter the bootstrap replica printed too).
    const boot = replicas.find((r) => r.mode === 'bootstrap')!;
    const bootLogs = await logsOf(boot.id);
    expect(bootLogs).toContain('allocated 8 MB');
    const firsts: number[] = [];
    for (const r of replicas.filter((x) => x.mode === 'restore')) {
      // A replica restored a moment ago may not have ticked yet: the sample prints once a second.
      const logs = await eventually('a counter from the restored replica', async () => {
        const text = await logsOf(r.id);
        return counters(text).length > 0 ? text : undefined;
      });
      expect(logs).not.toContain('allocated');
      firsts.push(counters(logs)[0] ?? -1);
    }
    // Restored at different moments, yet all continue from the one checkpoint: the same next number
    // (one tick apart at most), which the bootstrap replica itself passed through.
    // (0 is possible: without a readiness probe, a loaded host may still be in the sample's CPU
    // warm-up when warmupSeconds ends; the restores then finish that same warm-up.)
    expect(Math.min(...firsts)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...firsts) - Math.min(...firsts)).toBeLessThanOrEqual(1);
    expect(counters(await logsOf(boot.id))).toContain(Math.min(...firsts));

    const told = await events('app');
    expect(told).toContain('BootstrapStarted');
    expect(told).toContain('BootstrapSucceeded');
    const text = await agent!.metrics();
    expect(sample(text, 'crs_bootstrap_duration_seconds_count', { outcome: 'success' })).toBe(1);
    expect(sample(text, 'crs_checkpoint_size_bytes', { namespace, name: 'app', node })).toBeGreaterThan(8 * 2 ** 20);
  });

  it('a template change bootstraps a new checkpoint, rolls the replicas and reclaims the old one', async () => {
    await k.apply(manifest('app', { replicas: 5, mark: '2' }));
    await eventually(
      'the new generation Ready',
      async () => {
        const crs = await get('app');
        const ready = crs.status?.conditions?.find((c) => c.type === 'Ready');
        return crs.status?.observedGeneration === crs.metadata.generation && ready?.status === 'True' ? true : undefined;
      },
      180_000,
    );
    const replicas = (await byMode(uid)).filter((r) => r.state === 'running');
    const newHash = replicas[0]!.hash;
    expect(newHash).not.toBe(firstHash);
    expect(replicas.every((r) => r.hash === newHash)).toBe(true);
    expect(replicas.map((r) => r.mode).sort()).toEqual(['bootstrap', 'restore', 'restore', 'restore', 'restore']);
    await eventually(
      'the old checkpoint reclaimed',
      async () => ((await entries(path.join(nsFolder(), 'app', uid))).join() === newHash ? true : undefined),
      30_000,
    );
    expect((await get('app')).status?.nodes?.[0]?.bootstrap).toMatchObject({ phase: 'Ready', templateHash: newHash });
  });

  it('delete removes every container and leaves no byte of the checkpoint', async () => {
    await k('-n', namespace, 'delete', 'crs', 'app', '--timeout=120s');
    expect(await byMode(uid)).toEqual([]);
    expect(await entries(path.join(nsFolder(), 'app'))).toEqual([]);
  });

  it('an app that never gets ready: BootstrapFailed, no restore attempted, bounded cold starts', async () => {
    const creates: string[] = [];
    const watch = await followEvents(bed, { type: ['container'], event: ['create'], label: [`checkpoint.dev/owner-namespace=${namespace}`] }, (e) => {
      creates.push(e.Actor?.Attributes?.[START_MODE] ?? '');
    });
    try {
      await k.apply(manifest('never', { replicas: 3, neverReady: true }));
      const degraded = await eventually(
        'Degraded BootstrapFailed',
        async () => {
          const c = (await get('never')).status?.conditions?.find((x) => x.type === 'Degraded' && x.status === 'True');
          return c?.reason === 'BootstrapFailed' ? c : undefined;
        },
        120_000,
      );
      expect(degraded.message).toMatch(/readiness|ready/i);
      const status = (await get('never')).status?.nodes?.find((n) => n.node === node);
      expect(status?.bootstrap?.phase).toBe('Failed');
      expect(status?.bootstrap?.message).toContain('BootstrapFailed');
      // Stays quiet: the next cold start waits for the Degraded probe's backoff (30 s at first).
      await new Promise((r) => setTimeout(r, 15_000));
      expect(creates.filter((m) => m === 'restore')).toEqual([]);
      expect(creates.length).toBeGreaterThanOrEqual(1);
      expect(creates.length).toBeLessThanOrEqual(2);
      expect(await events('never')).toContain('BootstrapFailed');
      expect(sample(await agent!.metrics(), 'crs_bootstrap_duration_seconds_count', { outcome: 'failure' })).toBeGreaterThanOrEqual(1);
    } finally {
      watch.stop();
    }
    const uidNever = (await get('never')).metadata.uid;
    expect((await byMode(uidNever)).filter((r) => r.state === 'running')).toEqual([]);
    expect(await entries(path.join(nsFolder(), 'never', uidNever))).toEqual([]);
  });
  it('an agent killed mid-bootstrap: the half-made checkpoint is discarded and redone, never restored; no duplicates', async () => {
    await k.apply(manifest('restart', { replicas: 3, warmupSeconds: 8 }));
    const id = (await get('restart')).metadata.uid;
    const boot = await eventually(
      'the bootstrap replica warming up',
      async () => (await byMode(id)).find((r) => r.mode === 'bootstrap' && r.state === 'running'),
      60_000,
    );
    // Status says so while it warms up (8 s).
    await eventually(
      'status bootstrap phase Bootstrapping',
      async () => ((await get('restart')).status?.nodes?.[0]?.bootstrap?.phase === 'Bootstrapping' ? true : undefined),
      7_000,
    );
    await agent!.kill('SIGKILL');
    // What a kill in the middle of `docker checkpoint create` leaves: a .tmp with part of a checkpoint.
    const half = path.join(nsFolder(), 'restart', id, `${boot.hash}.tmp`);
    await fs.mkdir(half, { recursive: true });
    await fs.writeFile(path.join(half, 'inventory.img'), 'half-made');
    const kubeconfig = await serviceAccountKubeconfig(bed, k);
    agent = await startAgent(bed, { nodeName: node, namespace, kubeconfig });
    await agent.ready();
    await k('-n', namespace, 'wait', 'crs/restart', '--for=condition=Ready', '--timeout=180s');
    const replicas = (await byMode(id)).filter((r) => r.state === 'running');
    expect(replicas).toHaveLength(3);
    expect(await entries(path.join(nsFolder(), 'restart', id))).toEqual([boot.hash]);
    expect((await get('restart')).status?.nodes?.[0]?.bootstrap?.phase).toBe('Ready');
    // The restores came from the new, complete checkpoint (the half-made one would fail in CRIU).
    for (const r of replicas.filter((x) => x.mode === 'restore')) expect(await logsOf(r.id)).not.toContain('allocated');
  });

  it('paused: nothing bootstraps; unpaused: it does; scale up restores from the existing checkpoint', async () => {
    await k.apply(manifest('paused', { replicas: 2, paused: true }));
    const id = (await get('paused')).metadata.uid;
    await new Promise((r) => setTimeout(r, 3000));
    expect(await byMode(id)).toEqual([]);
    await k.apply(manifest('paused', { replicas: 2 }));
    await k('-n', namespace, 'wait', 'crs/paused', '--for=condition=Ready', '--timeout=180s');
    await k('-n', namespace, 'scale', 'crs/paused', '--replicas=4');
    await eventually('4 ready', async () => ((await get('paused')).status?.readyReplicas === 4 ? true : undefined), 120_000);
    expect((await byMode(id)).map((r) => r.mode).sort()).toEqual(['bootstrap', 'restore', 'restore', 'restore']);
  });
});
