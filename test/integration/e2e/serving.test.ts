// Replicas people can serve from (issue 15), end to end: the real agent against the real apiserver
// and the real Docker engine with CRIU. The source serves its counter over HTTP on a bridge network
// and is checkpointed quiescent (no TCP socket: docs/serving.md); each replica publishes its port on
// an ephemeral host port, runs the post-restore hook (which makes the sample listen again), passes
// an httpGet readiness probe, and appears in its EndpointSlice. 4 replicas, not the 12: the
// same paths, a third of the CI time.
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { OWNER_NAME, OWNER_NAMESPACE, OWNER_UID } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { type RunningAgent, serviceAccountKubeconfig, startAgent } from '../support/agent.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { checkpointedSource, containersWithLabel, dockerClient, followEvents } from '../support/workload.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);
const stamp = Date.now().toString(36);
const namespace = `serve-${stamp}`;
const node = `serve-node-${stamp}`;
const network = `crs-serve-${stamp}`;
const sourceName = `${namespace}-source`;
let agent: RunningAgent | undefined;
/** The last counter the source printed before its checkpoint: every replica must continue past it. */
let sourceCounter = -1;

interface Extra {
  replicas: number;
  postRestore?: string[] | null;
  probe?: Record<string, unknown> | null;
  maxAttempts?: number;
}

function manifest(name: string, extra: Extra): string {
  return JSON.stringify({
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace },
    spec: {
      replicas: extra.replicas,
      serviceName: name,
      checkpoint: { container: sourceName, name: 'warm' },
      template: {
        image: bed.sampleImage,
        env: [
          { name: 'APP_MEMORY_MB', value: '4' },
          { name: 'APP_HTTP_PORT', value: '8080' },
        ],
        ports: [{ name: 'http', containerPort: 8080 }],
        ...(extra.probe === null ? {} : { readinessProbe: extra.probe ?? { httpGet: { port: 8080, path: '/' }, periodSeconds: 1, failureThreshold: 10 } }),
        ...(extra.postRestore === null ? {} : { postRestore: { exec: { command: extra.postRestore ?? ['/app', 'post-restore'] }, timeoutSeconds: 10 } }),
      },
      restore: { maxConcurrent: 10, timeoutSeconds: 60, maxAttempts: extra.maxAttempts ?? 3 },
    },
  });
}

async function get(name: string): Promise<CheckpointReplicaSet> {
  return k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', name);
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function httpGet(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
  return res.text();
}

/** The host port of container port 8080/tcp of each running replica of `uid`, by container id. */
async function hostPorts(uid: string): Promise<Map<string, number>> {
  const docker = dockerClient(bed);
  const out = new Map<string, number>();
  for (const c of await containersWithLabel(bed, OWNER_UID, uid)) {
    // A replica being replaced can vanish between the list and the inspect.
    const info = await docker
      .getContainer(c.id)
      .inspect()
      .catch(() => undefined);
    if (!info) continue;
    const port = Number(info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort);
    if (info.State.Running && port) out.set(c.id, port);
  }
  return out;
}

async function slices(uid: string): Promise<V1EndpointSlice[]> {
  const list = await k.json<{ items: V1EndpointSlice[] }>('-n', namespace, 'get', 'endpointslices', '-l', `${OWNER_UID}=${uid}`);
  return list.items;
}

/** The host's address as the agent picks it by default. */
const hostAddress =
  Object.values(os.networkInterfaces())
    .flat()
    .find((a) => a?.family === 'IPv4' && !a.internal)?.address ?? '';

/** "address:port" of every endpoint of the resource's slices, sorted. */
async function sliceEndpoints(uid: string): Promise<string[]> {
  return (await slices(uid)).flatMap((s) => s.endpoints.flatMap((e) => e.addresses.map((a) => `${a}:${s.ports?.[0]?.port ?? 0}`))).sort();
}

/** What the slices must say: the host's address and each running replica's host port. */
async function readyEndpoints(uid: string): Promise<string[]> {
  return [...(await hostPorts(uid)).values()].map((p) => `${hostAddress}:${p}`).sort();
}

/** Docker's log stream frames each line with an 8-byte header: matched without ^ anchors. */
async function logsOf(id: string): Promise<string> {
  return (await dockerClient(bed).getContainer(id).logs({ stdout: true, stderr: true })).toString();
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

beforeAll(async () => {
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } }));
  const docker = dockerClient(bed);
  await docker.createNetwork({ Name: network, Driver: 'bridge' });
  const id = await checkpointedSource(bed, {
    containerName: sourceName,
    checkpointName: 'warm',
    allowNamespaces: namespace,
    memoryMb: 4,
    httpPort: 8080,
    network,
  });
  const counters = [...(await logsOf(id)).matchAll(/counter (\d+)/g)].map((m) => Number(m[1]));
  sourceCounter = Math.max(...counters);
  const kubeconfig = await serviceAccountKubeconfig(bed, k);
  // No --node-address: the agent takes the host's first non-loopback IPv4 (EndpointSlices refuse loopback).
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
  await docker
    .getContainer(sourceName)
    .remove({ force: true })
    .catch(() => undefined);
  await docker
    .getNetwork(network)
    .remove()
    .catch(() => undefined);
});

describe('served replicas', () => {
  let uid = '';

  it('each replica answers on its own host port with a counter continuing the checkpoint, after its hook ran exactly once', async () => {
    await k.apply(manifest('web', { replicas: 4 }));
    uid = (await get('web')).metadata.uid;
    await k('-n', namespace, 'wait', 'crs/web', '--for=condition=Ready', '--timeout=180s');
    expect((await get('web')).status).toMatchObject({ replicas: 4, readyReplicas: 4 });
    const ports = await hostPorts(uid);
    expect(ports.size).toBe(4);
    expect(new Set(ports.values()).size).toBe(4);
    for (const [id, port] of ports) {
      const counter = Number(/^counter (\d+)\n$/.exec(await httpGet(port))?.[1]);
      // Continued from the checkpoint: at least its last value (a replica asked within its first second still says it; a cold start prints "allocated", checked below).
      expect(counter).toBeGreaterThanOrEqual(sourceCounter);
      const logs = await logsOf(id);
      expect(logs).not.toContain('allocated');
      expect(logs.match(/after-restore \d+/g)).toEqual(['after-restore 1']);
    }
  });

  it('the EndpointSlices list exactly the Ready replicas, labelled for the Service', async () => {
    const want = await readyEndpoints(uid);
    expect(want).toHaveLength(4);
    // The published port answers at the address the slice gives out, not only on loopback.
    expect(await fetch(`http://${want[0]}/`, { signal: AbortSignal.timeout(3000) }).then((r) => r.text())).toMatch(/^counter \d+/);
    await eventually('slices of the 4 ready replicas', async () => ((await sliceEndpoints(uid)).join() === want.join() ? true : undefined), 30_000);
    for (const s of await slices(uid)) {
      expect(s.metadata?.labels).toMatchObject({
        'kubernetes.io/service-name': 'web',
        'endpointslice.kubernetes.io/managed-by': 'crs-controller.checkpoint.dev',
      });
      expect(s.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'CheckpointReplicaSet', name: 'web', uid });
      expect(s.ports).toEqual([expect.objectContaining({ name: 'http', protocol: 'TCP' })]);
    }
  });

  it('follows a replica killed by hand, scale down, scale up and a template change', async () => {
    const docker = dockerClient(bed);
    const victim = [...(await hostPorts(uid)).keys()][0] ?? '';
    await docker.getContainer(victim).kill();
    // Its endpoint goes (the agent sees the die event), and a replacement comes back Ready.
    await eventually(
      'the killed replica out of the slices',
      async () => {
        const eps = await sliceEndpoints(uid);
        const running = await readyEndpoints(uid);
        return eps.length >= 3 && eps.join() === running.join() && !(await hostPorts(uid)).has(victim) ? true : undefined;
      },
      60_000,
    );
    await eventually('4 ready endpoints again', async () => ((await sliceEndpoints(uid)).length === 4 ? true : undefined), 120_000);

    await k('-n', namespace, 'scale', 'crs/web', '--replicas=2');
    await eventually(
      '2 endpoints after scale down',
      async () => {
        const eps = await sliceEndpoints(uid);
        return eps.length === 2 && eps.join() === (await readyEndpoints(uid)).join() ? true : undefined;
      },
      60_000,
    );

    await k('-n', namespace, 'scale', 'crs/web', '--replicas=5');
    await eventually(
      '5 endpoints after scale up',
      async () => {
        const eps = await sliceEndpoints(uid);
        return eps.length === 5 && eps.join() === (await readyEndpoints(uid)).join() ? true : undefined;
      },
      180_000,
    );

    // A template change: new replicas replace the old, and the slices name only the new ones once the old are gone.
    const before = new Set((await hostPorts(uid)).keys());
    const changed = JSON.parse(manifest('web', { replicas: 5 })) as { spec: { template: { env: { name: string; value: string }[] } } };
    changed.spec.template.env.push({ name: 'APP_ROLLOUT', value: '2' });
    await k.apply(JSON.stringify(changed));
    await eventually(
      '5 endpoints of new replicas only',
      async () => {
        const ports = await hostPorts(uid);
        const eps = await sliceEndpoints(uid);
        const fresh = [...ports.keys()].every((id) => !before.has(id));
        return ports.size === 5 && fresh && eps.join() === (await readyEndpoints(uid)).join() ? true : undefined;
      },
      180_000,
    );
  });

  it('the slices are gone after the resource is deleted', async () => {
    await k('-n', namespace, 'delete', 'crs/web', '--timeout=120s');
    await eventually('no slices', async () => ((await slices(uid)).length === 0 ? true : undefined), 30_000);
  });

  it('a probe that never passes fails restores with ReadinessTimeout, spending at most maxAttempts per replica', async () => {
    // Without the hook the restored sample never listens again: the probe cannot pass.
    const created: string[] = [];
    // Followed from before the apply (by owner name: the uid is not known yet), so no create is missed.
    const follow = await followEvents(bed, { type: ['container'], label: [`${OWNER_NAMESPACE}=${namespace}`, `${OWNER_NAME}=deaf`], event: ['create'] }, (e) =>
      created.push(e.id),
    );
    await k.apply(
      manifest('deaf', { replicas: 3, postRestore: null, probe: { httpGet: { port: 8080 }, periodSeconds: 1, failureThreshold: 2 }, maxAttempts: 1 }),
    );
    const deafUid = (await get('deaf')).metadata.uid;
    try {
      await eventually('ReadinessTimeout in an Event', async () => ((await events('deaf')).includes('ReadinessTimeout') ? true : undefined), 120_000);
      const crs = await get('deaf');
      expect(crs.status?.readyReplicas ?? 0).toBe(0);
      expect(await events('deaf')).toMatch(/readiness probe failed 2 time\(s\) in a row/);
      // Nothing unready is left running, and nothing is in the slices.
      await eventually('no deaf container left', async () => ((await hostPorts(deafUid)).size === 0 ? true : undefined), 30_000);
      expect(await slices(deafUid)).toEqual([]);
    } finally {
      follow.stop();
    }
    // maxAttempts 1 and 3 replicas: at most 3 restores were spent on a checkpoint that never serves.
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(created.length).toBeLessThanOrEqual(3);
    await k('-n', namespace, 'delete', 'crs/deaf', '--timeout=60s');
  });

  it('a failing post-restore hook fails that restore with the output in the Event', async () => {
    await k.apply(manifest('hook', { replicas: 1, postRestore: ['/app', 'no-such-step'], probe: null, maxAttempts: 1 }));
    await eventually('PostRestoreFailed in an Event', async () => ((await events('hook')).includes('PostRestoreFailed') ? true : undefined), 120_000);
    expect(await events('hook')).toMatch(/exited 2.*Output: unknown argument no-such-step/);
    expect((await get('hook')).status?.readyReplicas ?? 0).toBe(0);
  });
});
