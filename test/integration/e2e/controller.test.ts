// End to end, as a user runs it: the real agent process (controller/main.ts) against the real
// kube-apiserver (driven with the real kubectl) and the real Docker engine with CRIU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE, OWNER_NAME, OWNER_UID, REPLICA_ID, TEMPLATE_HASH } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { type RunningAgent, sample, serviceAccountKubeconfig, startAgent } from '../support/agent.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { checkpointedSource, containersWithLabel, dockerClient, watchInFlight } from '../support/workload.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);
const namespace = `e2e-${Date.now().toString(36)}`;
const node = `e2e-node-${Date.now().toString(36)}`;
const sourceName = `${namespace}-source`;
let agent: RunningAgent | undefined;
// The agent acts as the ServiceAccount of manifests/ with its ClusterRole: every test below also
// proves that the shipped RBAC is enough.
let agentKubeconfig = '';

function manifest(
  name: string,
  replicas: number,
  extra: { env?: Record<string, string>; container?: string; nodeSelector?: Record<string, string> } = {},
): string {
  const resource = {
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace },
    spec: {
      replicas,
      checkpoint: { container: extra.container ?? sourceName, name: 'warm' },
      template: {
        image: bed.sampleImage,
        env: Object.entries({ APP_MEMORY_MB: '16', ...extra.env }).map(([n, value]) => ({ name: n, value })),
      },
      restore: { maxConcurrent: 10, timeoutSeconds: 60, maxAttempts: 3 },
      ...(extra.nodeSelector ? { nodeSelector: extra.nodeSelector } : {}),
    },
  };
  return JSON.stringify(resource);
}

async function get(name: string): Promise<CheckpointReplicaSet> {
  return k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', name);
}

async function replicas(uid: string) {
  return containersWithLabel(bed, OWNER_UID, uid);
}

async function waitReady(name: string, timeout = '240s'): Promise<CheckpointReplicaSet> {
  await k('-n', namespace, 'wait', `crs/${name}`, '--for=condition=Ready', `--timeout=${timeout}`);
  const crs = await get(name);
  // Ready must be about the current spec, not an older generation.
  const ready = crs.status?.conditions?.find((c) => c.type === 'Ready');
  expect(ready?.observedGeneration).toBe(crs.metadata.generation);
  return crs;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { role: 'restore' } } }));
  await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: namespace });
  agentKubeconfig = await serviceAccountKubeconfig(bed, k);
  agent = await startAgent(bed, { nodeName: node, namespace, kubeconfig: agentKubeconfig });
  await agent.ready();
});

afterAll(async () => {
  await agent?.kill('SIGTERM');
  await k('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
  await k('delete', 'node', node).catch(() => undefined);
  // Remove whatever a failed test left (only this run's containers: they carry this namespace).
  const docker = dockerClient(bed);
  for (const c of await containersWithLabel(bed, 'checkpoint.dev/owner-namespace', namespace)) {
    await docker
      .getContainer(c.id)
      .remove({ force: true })
      .catch(() => undefined);
  }
  await docker
    .getContainer(sourceName)
    .remove({ force: true })
    .catch(() => undefined);
});

describe('a CheckpointReplicaSet applied with kubectl', () => {
  let uid = '';

  it('restores 12 replicas, never more than 10 in flight, and reports Ready', async () => {
    await k.apply(manifest('app', 12));
    uid = (await get('app')).metadata.uid;
    const inFlight = await watchInFlight(bed, OWNER_UID, uid);
    try {
      const crs = await waitReady('app');
      expect(crs.status).toMatchObject({ replicas: 12, readyReplicas: 12, failedReplicas: 0 });
      expect(crs.status?.nodes?.map((n) => n.node)).toEqual([node]);
    } finally {
      inFlight.stop();
    }
    const running = await replicas(uid);
    expect(running).toHaveLength(12);
    expect(running.every((c) => c.state === 'running')).toBe(true);
    expect(running.every((c) => c.labels[NODE] === node && c.labels[OWNER_NAME] === 'app')).toBe(true);
    expect(new Set(running.map((c) => c.labels[REPLICA_ID])).size).toBe(12);
    expect(inFlight.peak()).toBeGreaterThan(0);
    expect(inFlight.peak()).toBeLessThanOrEqual(10);
    // Restored, not cold-started: each continues the source's counter.
    const logs = (
      await dockerClient(bed)
        .getContainer(running[0]?.id ?? '')
        .logs({ stdout: true })
    ).toString();
    expect(logs).not.toContain('allocated');
  });

  it('scales to 3 with kubectl scale, removing the newest 9, and back to 12', async () => {
    const before = await replicas(uid);
    const oldest = [...before].sort((a, b) => a.created - b.created || a.id.localeCompare(b.id));
    await k('-n', namespace, 'scale', 'crs/app', '--replicas=3');
    await eventually('3 replicas', async () => ((await replicas(uid)).length === 3 ? true : undefined));
    const kept = (await replicas(uid)).map((c) => c.id).sort();
    // All were ready, so the newest go first: the 3 created earliest remain (ties broken by nothing
    // we can see, so compare creation times rather than ids).
    const keptCreated = (await replicas(uid)).map((c) => c.created).sort();
    const oldestCreated = oldest
      .slice(0, 3)
      .map((c) => c.created)
      .sort();
    expect(keptCreated).toEqual(oldestCreated);
    expect(kept.every((id) => before.some((c) => c.id === id))).toBe(true);
    await waitReady('app');

    await k('-n', namespace, 'scale', 'crs/app', '--replicas=12');
    const crs = await waitReady('app');
    expect(crs.status?.readyReplicas).toBe(12);
    expect(await replicas(uid)).toHaveLength(12);
  });

  it('replaces every replica after a template change, under the same bound', async () => {
    const before = await replicas(uid);
    const oldHash = before[0]?.labels[TEMPLATE_HASH];
    const inFlight = await watchInFlight(bed, OWNER_UID, uid);
    try {
      await k.apply(manifest('app', 12, { env: { ROLLOUT: '2' } }));
      await eventually(
        'all replicas on the new template',
        async () => {
          const now = await replicas(uid);
          return now.length === 12 && now.every((c) => c.labels[TEMPLATE_HASH] !== oldHash && c.state === 'running') ? true : undefined;
        },
        240_000,
      );
      await waitReady('app');
    } finally {
      inFlight.stop();
    }
    const after = await replicas(uid);
    expect(after.some((c) => before.some((b) => b.id === c.id))).toBe(false);
    expect(inFlight.peak()).toBeLessThanOrEqual(10);
  });

  it('deletes every owned container on kubectl delete, and leaves a foreign one alone', async () => {
    const docker = dockerClient(bed);
    // Same name labels, another UID: not ours, whatever it claims.
    const foreign = await docker.createContainer({
      Image: bed.sampleImage,
      name: `${namespace}-foreign`,
      Labels: { [OWNER_UID]: 'someone-else', [OWNER_NAME]: 'app', 'checkpoint.dev/owner-namespace': namespace },
      HostConfig: { NetworkMode: 'none' },
    });
    await foreign.start();
    try {
      await k('-n', namespace, 'delete', 'crs', 'app', '--timeout=120s');
      expect(await replicas(uid)).toHaveLength(0);
      const still = await foreign.inspect();
      expect(still.State.Running).toBe(true);
    } finally {
      await foreign.remove({ force: true });
    }
  });
});

describe('failure and recovery', () => {
  it('reports a missing checkpoint as Degraded without a hot loop, then converges when it appears', async () => {
    // A source container that does not exist yet: its checkpoint appears later in this test.
    const lateSource = `${namespace}-late`;
    await k.apply(manifest('missing', 2, { container: lateSource }));
    const crs = await eventually('Degraded=True', async () => {
      const c = await get('missing');
      const degraded = c.status?.conditions?.find((x) => x.type === 'Degraded');
      return degraded?.status === 'True' ? c : undefined;
    });
    const degraded = crs.status?.conditions?.find((x) => x.type === 'Degraded');
    expect(degraded?.reason).toBe('CheckpointNotFound');
    const events = await k('-n', namespace, 'get', 'events', '--field-selector', `involvedObject.name=missing`, '-o', 'json');
    expect(events).toContain('CheckpointNotFound');

    // No hot loop: over 10 s the agent makes at most a handful of attempts.
    const attempts = async () => sample(await agent!.metrics(), 'crs_restores_total', { name: 'missing', result: 'failure' }) ?? 0;
    const first = await attempts();
    await new Promise((r) => setTimeout(r, 10_000));
    expect((await attempts()) - first).toBeLessThanOrEqual(2);
    expect(await containersWithLabel(bed, OWNER_UID, crs.metadata.uid)).toHaveLength(0);

    // The cause goes away: the source and its checkpoint appear. The agent notices on its own
    // (resync / probe), without any change to the resource.
    await checkpointedSource(bed, { containerName: lateSource, checkpointName: 'warm', allowNamespaces: namespace });
    await waitReady('missing', '180s');
    expect(await containersWithLabel(bed, OWNER_UID, crs.metadata.uid)).toHaveLength(2);
    await k('-n', namespace, 'delete', 'crs', 'missing', '--timeout=120s');
    await dockerClient(bed).getContainer(lateSource).remove({ force: true });
  });

  it('survives SIGKILL mid-rollout: exactly 20 replicas at the end, none duplicated or orphaned', async () => {
    await k.apply(manifest('kill', 20));
    const uid = (await get('kill')).metadata.uid;
    await eventually('a few replicas restored', async () => ((await replicas(uid)).filter((c) => c.state === 'running').length >= 3 ? true : undefined));
    expect(await agent!.kill('SIGKILL')).toBeNull();
    agent = await startAgent(bed, { nodeName: node, namespace, kubeconfig: agentKubeconfig });
    await agent.ready();
    await waitReady('kill');
    const all = await replicas(uid);
    expect(all).toHaveLength(20);
    expect(all.every((c) => c.state === 'running')).toBe(true);
    expect(new Set(all.map((c) => c.labels[REPLICA_ID])).size).toBe(20);
    await k('-n', namespace, 'delete', 'crs', 'kill', '--timeout=120s');
    expect(await replicas(uid)).toHaveLength(0);
  });
});

describe('spec.nodeSelector', () => {
  it('runs replicas only once the Node carries the selected labels, and removes them when it stops', async () => {
    await k.apply(manifest('selected', 2, { nodeSelector: { pool: 'restore-fast' } }));
    const uid = (await get('selected')).metadata.uid;
    // Give the agent time to see it (it reconciles within a second) and decide to do nothing.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await replicas(uid)).toHaveLength(0);
    expect((await get('selected')).status?.nodes ?? []).toEqual([]);

    await k('label', 'node', node, 'pool=restore-fast');
    await waitReady('selected');
    expect(await replicas(uid)).toHaveLength(2);

    await k('label', 'node', node, 'pool-');
    await eventually('replicas removed from the node that no longer matches', async () => ((await replicas(uid)).length === 0 ? true : undefined));
    await k('-n', namespace, 'delete', 'crs', 'selected', '--timeout=120s');
  });
});
