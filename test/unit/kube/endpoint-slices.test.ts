// The pure part of the EndpointSlice sync: which slices a resource's replicas call for, and the
// creates and deletes that make the apiserver's set exactly that; and EndpointSync's bounds (how
// many resources sync at once, which watch updates cause a sync) with a fake client.
import { describe, expect, it } from 'vitest';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import type { Replica } from '../../../controller/engine/types.js';
import { EndpointSync, desiredSlice, planSlices, type EndpointSliceClient } from '../../../controller/kube/endpoint-slices.js';
import { noopLogger } from '../../../controller/kube/logger.js';

const resource = {
  apiVersion: 'checkpoint.dev/v1alpha1',
  kind: 'CheckpointReplicaSet',
  metadata: { name: 'web', namespace: 'team-a', uid: 'u-1' },
  spec: {
    replicas: 2,
    serviceName: 'web',
    checkpoint: { container: 'src', name: 'warm' },
    template: { image: 'img', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] },
    restore: { maxConcurrent: 10, timeoutSeconds: 60, maxAttempts: 3, fallback: 'None' },
  },
} as CheckpointReplicaSet;

function replica(id: string, over: Partial<Replica> = {}): Replica {
  return {
    containerId: `c-${id}`,
    containerName: `n-${id}`,
    ownerUid: 'u-1',
    replicaId: id,
    attempt: 1,
    templateHash: 'h',
    startMode: 'restore',
    state: 'running',
    ready: true,
    createdAt: new Date(0),
    ports: [{ containerPort: 8080, protocol: 'TCP', hostPort: 32768 + Number(id) }],
    ...over,
  };
}

describe('desiredSlice', () => {
  it('one endpoint at the node address, the host port under the template port name, labelled for the Service', () => {
    const s = desiredSlice(resource, 'node-1', '10.0.0.5', replica('1'));
    expect(s?.endpoints).toEqual([{ addresses: ['10.0.0.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-1' }]);
    expect(s?.ports).toEqual([{ name: 'http', port: 32769, protocol: 'TCP' }]);
    expect(s?.metadata?.labels?.['kubernetes.io/service-name']).toBe('web');
    expect(s?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'CheckpointReplicaSet', uid: 'u-1', controller: true });
  });

  it('none for a replica that is not ready or publishes nothing', () => {
    expect(desiredSlice(resource, 'node-1', '10.0.0.5', replica('1', { ready: false }))).toBeUndefined();
    expect(desiredSlice(resource, 'node-1', '10.0.0.5', replica('1', { ports: [] }))).toBeUndefined();
  });
});

describe('planSlices', () => {
  const a = desiredSlice(resource, 'n', '10.0.0.5', replica('1'))!;
  const b = desiredSlice(resource, 'n', '10.0.0.5', replica('2'))!;

  it('creates the missing, deletes the unwanted, leaves the equal alone', () => {
    expect(planSlices([a], [a, b])).toEqual({ create: [b], delete: [] });
    expect(planSlices([a, b], [b])).toEqual({ create: [], delete: [a.metadata?.name] });
    expect(planSlices([a, b], [a, b])).toEqual({ create: [], delete: [] });
  });

  it('replaces a slice whose content differs (e.g. serviceName changed)', () => {
    const renamed = { ...a, metadata: { ...a.metadata, labels: { ...a.metadata?.labels, 'kubernetes.io/service-name': 'other' } } };
    expect(planSlices([a], [renamed])).toEqual({ create: [renamed], delete: [a.metadata?.name] });
  });
});

describe('EndpointSync', () => {
  /** A client whose list calls wait until released, counting how many run at once. */
  function slowClient() {
    let running = 0;
    let peak = 0;
    let lists = 0;
    const waiting: Array<() => void> = [];
    const client: EndpointSliceClient = {
      list: async () => {
        lists++;
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => waiting.push(resolve));
        running--;
        return [];
      },
      create: async () => undefined,
      delete: async () => undefined,
    };
    return { client, peak: () => peak, lists: () => lists, releaseAll: () => waiting.splice(0).forEach((r) => r()) };
  }
  const ofUid = (uid: string, generation = 1): CheckpointReplicaSet => ({ ...resource, metadata: { ...resource.metadata, uid, generation } });
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

  it('syncs at most 4 resources at once, and all of them in the end', async () => {
    const c = slowClient();
    const sync = new EndpointSync({ client: c.client, node: 'n', address: '10.0.0.5', listReplicas: async () => [], logger: noopLogger });
    const done = Array.from({ length: 10 }, (_, i) => sync.sync(ofUid(`u-${i}`)));
    for (let i = 0; i < 20 && c.lists() < 10; i++) {
      await tick();
      c.releaseAll();
    }
    await Promise.all(done);
    expect(c.peak()).toBe(4);
    expect(c.lists()).toBe(10);
  });

  it('a watch update syncs only when the spec or the deletion changed since the last sync', async () => {
    const c = slowClient();
    const sync = new EndpointSync({ client: c.client, node: 'n', address: '10.0.0.5', listReplicas: async () => [], logger: noopLogger });
    const settle = async (p: Promise<void> | undefined): Promise<void> => {
      await tick();
      c.releaseAll();
      await p;
    };
    await settle(sync.sync(ofUid('u-1', 1)));
    expect(sync.syncOnSpecChange(ofUid('u-1', 1))).toBeUndefined(); // a status write's echo
    await settle(sync.syncOnSpecChange(ofUid('u-1', 2)));
    const deleting = { ...ofUid('u-1', 2), metadata: { ...ofUid('u-1', 2).metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } };
    await settle(sync.syncOnSpecChange(deleting));
    expect(c.lists()).toBe(3);
  });
});
