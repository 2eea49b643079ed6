// The top-level Reconciling / Stalled conditions over the nodes' entries, as kstatus reads them.
import { describe, expect, it } from 'vitest';
import { aggregateConditions } from '../../../controller/kube/aggregate.js';
import type { Condition, NodeStatus } from '../../../controller/api/types.js';

const T0 = new Date('2025-01-01T00:00:00Z');
const T1 = new Date('2025-01-01T00:05:00Z');

function cond(type: Condition['type'], status: Condition['status'], reason: string, message = reason): Condition {
  return { type, status, reason, message, lastTransitionTime: '2024-12-31T00:00:00Z', observedGeneration: 3 };
}
const atRest = [cond('Ready', 'True', 'AllReplicasReady'), cond('Progressing', 'False', 'Converged'), cond('Degraded', 'False', 'AsExpected')];
const restoring = [cond('Ready', 'False', 'ReplicasNotReady'), cond('Reconciling', 'True', 'Restoring', 'batch 2'), cond('Progressing', 'True', 'Restoring')];
const stalled = [
  cond('Ready', 'False', 'CheckpointNotFound'),
  cond('Stalled', 'True', 'CheckpointNotFound', 'no checkpoint warm'),
  cond('Degraded', 'True', 'CheckpointNotFound'),
];

function node(name: string, conditions: Condition[], observedGeneration = 3): NodeStatus {
  return { node: name, observedGeneration, replicas: 0, readyReplicas: 0, restoringReplicas: 0, failedReplicas: 0, conditions };
}
const types = (list: Condition[]) => list.map((c) => c.type);
const find = (list: Condition[], type: Condition['type']) => list.find((c) => c.type === type);

describe('aggregateConditions: kstatus conditions', () => {
  it('all nodes at rest: neither Reconciling nor Stalled, and a previous one is removed', () => {
    const previous = aggregateConditions(undefined, [node('a', restoring)], 3, T0);
    expect(find(previous, 'Reconciling')).toMatchObject({ status: 'True', reason: 'Restoring', message: 'node a: batch 2', observedGeneration: 3 });
    const list = aggregateConditions(previous, [node('a', atRest), node('b', atRest)], 3, T1);
    expect(types(list)).toEqual(['Ready', 'Progressing', 'Degraded']);
  });

  it('a stalled node makes the resource Stalled, even while another node still works', () => {
    const list = aggregateConditions(undefined, [node('a', restoring), node('b', stalled), node('c', stalled)], 3, T0);
    expect(find(list, 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'CheckpointNotFound',
      message: 'node b: no checkpoint warm (and 1 more node)',
    });
    expect(find(list, 'Reconciling')).toBeUndefined();
    expect(find(list, 'Ready')).toMatchObject({ status: 'False' });
  });

  it("a node's Stalled from an older generation does not count: the new spec may fix it", () => {
    const list = aggregateConditions(undefined, [node('a', atRest), node('b', stalled, 2)], 3, T0);
    expect(find(list, 'Stalled')).toBeUndefined();
    expect(find(list, 'Reconciling')).toMatchObject({ status: 'True', reason: 'GenerationNotObserved' });
  });

  it('no node reported yet: Reconciling NoNodeReported, Ready False', () => {
    const list = aggregateConditions(undefined, [], 1, T0);
    expect(find(list, 'Reconciling')).toMatchObject({ status: 'True', reason: 'NoNodeReported' });
    expect(find(list, 'Ready')).toMatchObject({ status: 'False', reason: 'NoNodeReported' });
  });

  it('Stalled replaces Reconciling (never both), and back', () => {
    const working = aggregateConditions(undefined, [node('a', restoring)], 3, T0);
    const stuck = aggregateConditions(working, [node('a', stalled)], 3, T1);
    expect(types(stuck).filter((t) => t === 'Reconciling' || t === 'Stalled')).toEqual(['Stalled']);
    expect(find(stuck, 'Stalled')!.lastTransitionTime).toBe('2025-01-01T00:05:00Z');
    const again = aggregateConditions(stuck, [node('a', restoring)], 3, T1);
    expect(types(again).filter((t) => t === 'Reconciling' || t === 'Stalled')).toEqual(['Reconciling']);
  });
});
