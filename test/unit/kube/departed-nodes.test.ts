import { describe, expect, it } from 'vitest';
import type { CheckpointReplicaSet, NodeStatus } from '../../../controller/api/types.js';
import { DepartedNodeSweeper } from '../../../controller/kube/departed-nodes.js';
import { NodeFinalizer, finalizerFor } from '../../../controller/kube/finalizers.js';
import { StatusWriter } from '../../../controller/kube/status-writer.js';
import { FakeCrsStore, sampleResource } from './fake-crs-store.js';
import { ManualClock } from './manual-clock.js';

function entry(node: string, ready: number): NodeStatus {
  return { node, observedGeneration: 1, replicas: ready, readyReplicas: ready, restoringReplicas: 0, failedReplicas: 0 };
}

const THREE_NODES = {
  finalizers: ['other.io/keep', finalizerFor('n1'), finalizerFor('n2'), finalizerFor('n3')],
  status: { replicas: 6, readyReplicas: 6, nodes: [entry('n1', 1), entry('n2', 2), entry('n3', 3)] },
};

function setup(existing: Set<string>, stored: { finalizers: string[]; status: CheckpointReplicaSet['status'] } = THREE_NODES, graceMs = 60_000) {
  const clock = new ManualClock();
  const store = new FakeCrsStore();
  store.put({ ...sampleResource(), metadata: { ...sampleResource().metadata, finalizers: stored.finalizers }, status: stored.status });
  let lists = 0;
  const sweeper = new DepartedNodeSweeper({
    node: 'n1',
    graceMs,
    listNodeNames: async () => {
      lists++;
      return new Set(existing);
    },
    resources: () => [store.peek('ns', 'web') as CheckpointReplicaSet],
    status: new StatusWriter({ client: store, node: 'n1', clock }),
    finalizer: new NodeFinalizer({ client: store, node: 'n1', clock }),
    clock,
  });
  return { clock, store, sweeper, lists: () => lists };
}

describe('DepartedNodeSweeper', () => {
  it("removes a node's entry and finalizer only after its Node has been missing for the whole grace period", async () => {
    const { clock, store, sweeper } = setup(new Set(['n1', 'n2']));
    expect(await sweeper.sweep()).toEqual({ departed: [], cleaned: 0 }); // n3 first seen missing
    await clock.advance(59_999);
    expect((await sweeper.sweep()).departed).toEqual([]);
    await clock.advance(1);
    expect(await sweeper.sweep()).toEqual({ departed: ['n3'], cleaned: 1 });
    const obj = store.peek('ns', 'web')!;
    expect(obj.status?.nodes?.map((n) => n.node)).toEqual(['n1', 'n2']);
    expect(obj.status).toMatchObject({ replicas: 3, readyReplicas: 3, nodeCount: 2 }); // summary recomputed
    expect(obj.metadata.finalizers).toEqual(['other.io/keep', finalizerFor('n1'), finalizerFor('n2')]);
  });

  it('keeps everything of a Node that comes back within the grace period, and restarts its clock', async () => {
    const existing = new Set(['n1', 'n2']);
    const { clock, store, sweeper } = setup(existing);
    await sweeper.sweep();
    await clock.advance(50_000);
    existing.add('n3'); // back (e.g. the kubelet re-registered it)
    await sweeper.sweep();
    existing.delete('n3');
    await clock.advance(50_000);
    expect((await sweeper.sweep()).departed).toEqual([]); // its clock started again
    expect(store.peek('ns', 'web')?.status?.nodes).toHaveLength(3);
  });

  it('never sweeps its own node, and lists no Nodes when no other node is named', async () => {
    const { store, sweeper, lists } = setup(new Set(), { finalizers: [finalizerFor('n1')], status: { nodes: [entry('n1', 1)] } }, 0);
    expect(await sweeper.sweep()).toEqual({ departed: [], cleaned: 0 });
    expect(lists()).toBe(0);
    expect(store.peek('ns', 'web')?.status?.nodes).toHaveLength(1);
    expect(store.peek('ns', 'web')?.metadata.finalizers).toEqual([finalizerFor('n1')]);
  });
});
