// The pure part of the EndpointSlice sync: which slices a resource's replicas call for, and the
// creates and deletes that make the apiserver's set exactly that.
import { describe, expect, it } from 'vitest';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import type { Replica } from '../../../controller/engine/types.js';
import { desiredSlice, planSlices } from '../../../controller/kube/endpoint-slices.js';

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
