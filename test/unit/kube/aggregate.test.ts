import { describe, expect, it } from 'vitest';
import { aggregateConditions, mergeNodeStatus, removeNodeStatus, sameStatus, selectorFor } from '../../../controller/kube/aggregate.js';
import type { CheckpointReplicaSetStatus, Condition, NodeStatus } from '../../../controller/api/types.js';

const T0 = new Date('2025-01-01T00:00:00Z');
const T1 = new Date('2025-01-01T00:05:00Z');
const obj = { uid: 'u-1', generation: 3 };

function cond(type: Condition['type'], status: Condition['status'], reason: string, message = reason): Condition {
  return { type, status, reason, message, lastTransitionTime: '2024-12-31T00:00:00Z', observedGeneration: 3 };
}

function entry(node: string, counts: Partial<NodeStatus> = {}, conditions?: Condition[]): NodeStatus {
  return {
    node,
    observedGeneration: 3,
    replicas: 0,
    readyReplicas: 0,
    restoringReplicas: 0,
    failedReplicas: 0,
    ...counts,
    ...(conditions ? { conditions } : {}),
  };
}

const readyConds = [cond('Ready', 'True', 'AllReplicasReady'), cond('Progressing', 'False', 'Converged'), cond('Degraded', 'False', 'AsExpected')];

function top(status: CheckpointReplicaSetStatus, type: Condition['type']) {
  return status.conditions?.find((c) => c.type === type);
}

describe('mergeNodeStatus', () => {
  it('replaces only this node entry, keeps other nodes byte for byte, and sums over all nodes', () => {
    const other = entry('node-b', { replicas: 5, readyReplicas: 4, restoringReplicas: 1, failedReplicas: 0 });
    const current: CheckpointReplicaSetStatus = {
      nodes: [entry('node-a', { replicas: 1 }), other],
    };
    const next = mergeNodeStatus(current, entry('node-a', { replicas: 12, readyReplicas: 10, restoringReplicas: 1, failedReplicas: 1 }), obj, T0);
    expect(next.nodes?.map((n) => n.node)).toEqual(['node-a', 'node-b']);
    expect(next.nodes?.[1]).toBe(other);
    expect(next.nodes?.[0]).toMatchObject({ replicas: 12, readyReplicas: 10, lastUpdateTime: '2025-01-01T00:00:00Z' });
    expect(next).toMatchObject({ replicas: 17, readyReplicas: 14, restoringReplicas: 2, failedReplicas: 1 });
    expect(next.selector).toBe('checkpoint.dev/owner-uid=u-1');
    expect(next.nodeCount).toBe(2);
    expect(selectorFor('x')).toBe('checkpoint.dev/owner-uid=x');
  });

  it('appends a node that had no entry', () => {
    const next = mergeNodeStatus({ nodes: [entry('node-b')] }, entry('node-a', { replicas: 2 }), obj, T0);
    expect(next.nodes?.map((n) => n.node)).toEqual(['node-b', 'node-a']);
    expect(next.replicas).toBe(2);
  });

  it('is a fixed point: reporting the same state again later yields an equal status (no write needed)', () => {
    const first = mergeNodeStatus(undefined, entry('node-a', { replicas: 3, readyReplicas: 3 }, readyConds), obj, T0);
    const again = mergeNodeStatus(first, entry('node-a', { replicas: 3, readyReplicas: 3 }, readyConds), obj, T1);
    expect(sameStatus(first, again)).toBe(true);
    const changed = mergeNodeStatus(first, entry('node-a', { replicas: 4, readyReplicas: 3 }, readyConds), obj, T1);
    expect(sameStatus(first, changed)).toBe(false);
    expect(changed.nodes?.[0]?.lastUpdateTime).toBe('2025-01-01T00:05:00Z');
  });

  it('keeps lastTransitionTime of node and top-level conditions while their status does not change', () => {
    const notReady = [cond('Ready', 'False', 'ReplicasNotReady'), cond('Progressing', 'True', 'Restoring')];
    const s1 = mergeNodeStatus(undefined, entry('node-a', {}, notReady), obj, T0);
    expect(s1.nodes?.[0]?.conditions?.[0]?.lastTransitionTime).toBe('2025-01-01T00:00:00Z');
    const s2 = mergeNodeStatus(
      s1,
      entry('node-a', {}, [cond('Ready', 'False', 'ReplicasNotReady', 'other words'), cond('Progressing', 'True', 'Restoring')]),
      obj,
      T1,
    );
    expect(s2.nodes?.[0]?.conditions?.[0]).toMatchObject({ message: 'other words', lastTransitionTime: '2025-01-01T00:00:00Z' });
    expect(top(s2, 'Ready')?.lastTransitionTime).toBe('2025-01-01T00:00:00Z');
    const s3 = mergeNodeStatus(s2, entry('node-a', { readyReplicas: 1, replicas: 1 }, readyConds), obj, T1);
    expect(s3.nodes?.[0]?.conditions?.[0]?.lastTransitionTime).toBe('2025-01-01T00:05:00Z');
    expect(top(s3, 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: '2025-01-01T00:05:00Z', observedGeneration: 3 });
  });

  it('sets observedGeneration to the lowest generation any node has observed', () => {
    const s = mergeNodeStatus({ nodes: [{ ...entry('node-b'), observedGeneration: 2 }] }, entry('node-a'), obj, T0);
    expect(s.observedGeneration).toBe(2);
    expect(removeNodeStatus(s, 'node-b', obj, T0).observedGeneration).toBe(3);
  });

  it('removeNodeStatus drops only that node and recomputes', () => {
    const s = mergeNodeStatus({ nodes: [entry('node-b', { replicas: 2 })] }, entry('node-a', { replicas: 3 }), obj, T0);
    const r = removeNodeStatus(s, 'node-a', obj, T0);
    expect(r.nodes?.map((n) => n.node)).toEqual(['node-b']);
    expect(r.replicas).toBe(2);
    const none = removeNodeStatus(r, 'node-b', obj, T0);
    // 0, the schema's default: what the apiserver returns for a status without the field.
    expect(none.observedGeneration).toBe(0);
    expect(top(none, 'Ready')).toMatchObject({ status: 'False', reason: 'NoNodeReported' });
  });
});

describe('aggregateConditions', () => {
  it('Ready True only when every node is Ready True at the current generation', () => {
    const list = aggregateConditions(undefined, [entry('b', { readyReplicas: 2 }, readyConds), entry('a', { readyReplicas: 3 }, readyConds)], 3, T0);
    expect(list.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'AllNodesReady',
      message: '5 replicas ready on 2 nodes',
      observedGeneration: 3,
    });
    expect(list.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    expect(list.find((c) => c.type === 'Progressing')).toMatchObject({ status: 'False', reason: 'Converged' });
  });

  it('Ready False naming the first node (by name) that is not ready, with its reason', () => {
    const list = aggregateConditions(
      undefined,
      [
        entry('z', {}, [cond('Ready', 'False', 'ReplicasNotReady', '3/12 ready')]),
        entry('m', {}, [cond('Ready', 'False', 'Paused', 'paused')]),
        entry('a', {}, readyConds),
      ],
      3,
      T0,
    );
    expect(list.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'Paused', message: 'node m: paused' });
  });

  it('a node that has not observed the current generation keeps Ready False and Progressing True', () => {
    const stale = { ...entry('b', {}, readyConds), observedGeneration: 2 };
    const list = aggregateConditions(undefined, [entry('a', {}, readyConds), stale], 3, T0);
    expect(list.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'GenerationNotObserved' });
    expect(list.find((c) => c.type === 'Ready')?.message).toMatch(/^node b: generation 3 not observed yet \(last observed 2\)/);
    expect(list.find((c) => c.type === 'Progressing')).toMatchObject({ status: 'True', reason: 'GenerationNotObserved' });
  });

  it('Degraded True if any node is, with that node named; Progressing from the first progressing node', () => {
    const list = aggregateConditions(
      undefined,
      [
        entry('a', {}, [cond('Ready', 'False', 'ReplicasNotReady'), cond('Progressing', 'True', 'Restoring', 'batch 2 of 5')]),
        entry('b', {}, [cond('Ready', 'False', 'ReplicasNotReady'), cond('Degraded', 'True', 'CheckpointNotFound', 'no checkpoint warm')]),
      ],
      3,
      T0,
    );
    expect(list.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'CheckpointNotFound',
      message: 'node b: no checkpoint warm',
    });
    expect(list.find((c) => c.type === 'Progressing')).toMatchObject({ status: 'True', reason: 'Restoring', message: 'node a: batch 2 of 5' });
  });

  it('a node entry without conditions is not ready', () => {
    const list = aggregateConditions(undefined, [entry('a')], 3, T0);
    expect(list.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'NodeNotReady' });
  });
});
