import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../controller/kube/api-error.js';
import { InvalidNodeStatusError, StatusWriter } from '../../../controller/kube/status-writer.js';
import type { Condition, NodeStatus } from '../../../controller/api/types.js';
import { FakeCrsStore, sampleResource } from './fake-crs-store.js';
import { ManualClock, flush } from './manual-clock.js';

function ready(status: Condition['status'] = 'True'): Condition[] {
  return [{ type: 'Ready', status, reason: status === 'True' ? 'AllReplicasReady' : 'ReplicasNotReady', message: '', lastTransitionTime: '' }];
}

function entry(node: string, readyReplicas: number, replicas = 12): NodeStatus {
  return {
    node,
    observedGeneration: 1,
    replicas,
    readyReplicas,
    restoringReplicas: replicas - readyReplicas,
    failedReplicas: 0,
    conditions: ready(readyReplicas === replicas ? 'True' : 'False'),
  };
}

function setup(node = 'node-a') {
  const clock = new ManualClock();
  const store = new FakeCrsStore();
  const obj = store.put(sampleResource());
  const ref = { namespace: 'ns', name: 'web', uid: obj.metadata.uid, generation: 1 };
  const writer = new StatusWriter({ client: store, node, clock, random: () => 0 });
  return { clock, store, ref, writer };
}

describe('StatusWriter', () => {
  it('coalesces a burst of reports into one write of the latest entry', async () => {
    const { clock, store, ref, writer } = setup();
    const done: Array<Promise<void>> = [];
    for (let i = 0; i <= 12; i++) done.push(writer.report(ref, entry('node-a', i)));
    await flush();
    expect(store.statusWrites).toBe(0); // still inside the debounce window
    await clock.advance(250);
    await Promise.all(done);
    expect(store.statusWrites).toBe(1);
    const status = store.peek('ns', 'web')?.status;
    expect(status?.nodes).toHaveLength(1);
    expect(status).toMatchObject({ readyReplicas: 12, replicas: 12, restoringReplicas: 0, observedGeneration: 1 });
    expect(status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(writer.stats().writes).toBe(1);
  });

  it('keeps at most one write in flight per resource; reports during it are written once after', async () => {
    const { clock, store, ref, writer } = setup();
    let open!: () => void;
    store.gate = new Promise<void>((resolve) => (open = resolve));
    const first = writer.report(ref, entry('node-a', 1));
    await clock.advance(250);
    expect(store.statusWrites).toBe(0); // held in flight
    const later = [writer.report(ref, entry('node-a', 2)), writer.report(ref, entry('node-a', 3))];
    await clock.advance(1000);
    expect(store.gets).toBe(1); // no second round while the first is in flight
    store.gate = undefined;
    open();
    await first;
    expect(store.statusWrites).toBe(1);
    await clock.advance(250);
    await Promise.all(later);
    expect(store.statusWrites).toBe(2);
    expect(store.peek('ns', 'web')?.status?.readyReplicas).toBe(3);
  });

  it('writes nothing when the merged status equals the stored one', async () => {
    const { clock, store, ref, writer } = setup();
    const p = writer.report(ref, entry('node-a', 12));
    await clock.advance(250);
    await p;
    const again = writer.report(ref, entry('node-a', 12));
    await clock.advance(60_000);
    await again;
    expect(store.statusWrites).toBe(1);
    expect(writer.stats()).toMatchObject({ writes: 1, unchanged: 1 });
  });

  it('on 409 Conflict re-reads and retries, keeping the entry another node wrote meanwhile', async () => {
    const { clock, store, ref, writer } = setup('node-a');
    // node-b writes its entry right after node-a has read: node-a's first PUT is stale.
    let raced = false;
    store.afterGet = (obj) => {
      if (raced) return;
      raced = true;
      store.put({ ...obj, status: { nodes: [entry('node-b', 5, 5)] } });
    };
    const p = writer.report(ref, entry('node-a', 12));
    await clock.advance(250);
    await clock.advance(100); // the conflict backoff
    await p;
    const status = store.peek('ns', 'web')?.status;
    expect(status?.nodes?.map((n) => n.node).sort()).toEqual(['node-a', 'node-b']);
    expect(status).toMatchObject({ replicas: 17, readyReplicas: 17 });
    expect(writer.stats()).toMatchObject({ writes: 1, conflicts: 1 });
  });

  it('drops a report about a resource that is gone, or was re-created under another uid', async () => {
    const { clock, store, ref, writer } = setup();
    store.delete('ns', 'web');
    const p1 = writer.report(ref, entry('node-a', 1));
    await clock.advance(250);
    await p1;
    store.put(sampleResource('web', 'uid-new'));
    const p2 = writer.report(ref, entry('node-a', 1));
    await clock.advance(250);
    await p2;
    expect(store.statusWrites).toBe(0);
    expect(writer.stats().dropped).toBe(2);
    expect(clock.pending).toBe(0); // nothing left to retry
  });

  it('when the apiserver is unavailable, resolves the report and retries in the background with backoff', async () => {
    const { clock, store, ref, writer } = setup();
    const unavailable = new ApiError('Unavailable', 'apiserver unreachable', undefined);
    store.failNext = [unavailable, unavailable];
    const p = writer.report(ref, entry('node-a', 4));
    await clock.advance(250);
    await p; // resolved although nothing is written yet
    expect(store.statusWrites).toBe(0);
    expect(clock.pendingDelays()).toEqual([1000]);
    await clock.advance(1000);
    expect(clock.pendingDelays()).toEqual([2000]);
    await clock.advance(2000);
    expect(store.statusWrites).toBe(1);
    expect(store.peek('ns', 'web')?.status?.readyReplicas).toBe(4);
    expect(writer.stats()).toMatchObject({ failures: 2, writes: 1 });
    expect(clock.pending).toBe(0);
  });

  it('gives up a round after maxConflictRetries conflicts and retries later', async () => {
    const clock = new ManualClock();
    const store = new FakeCrsStore();
    store.put(sampleResource());
    const writer = new StatusWriter({ client: store, node: 'node-a', clock, random: () => 0, maxConflictRetries: 2 });
    store.afterGet = (obj) => store.put(obj); // someone always writes in between
    const p = writer.report({ namespace: 'ns', name: 'web', uid: 'uid-web', generation: 1 }, entry('node-a', 1));
    await clock.advance(250 + 50 + 100);
    await p;
    expect(writer.stats()).toMatchObject({ conflicts: 2, failures: 1, writes: 0 });
    store.afterGet = undefined;
    await clock.advance(1000);
    expect(writer.stats().writes).toBe(1);
  });

  it('remove() deletes only this node entry', async () => {
    const { clock, store, ref, writer } = setup('node-a');
    const obj = store.peek('ns', 'web');
    if (!obj) throw new Error('missing');
    store.put({ ...obj, status: { nodes: [entry('node-a', 1), entry('node-b', 2)] } });
    const p = writer.remove(ref);
    await clock.advance(250);
    await p;
    expect(store.peek('ns', 'web')?.status?.nodes?.map((n) => n.node)).toEqual(['node-b']);
    expect(store.peek('ns', 'web')?.status?.replicas).toBe(12);
  });

  it('flush() writes pending reports at once; after stop() reports are not written', async () => {
    const { store, ref, writer } = setup();
    const p = writer.report(ref, entry('node-a', 7));
    await writer.flush();
    await p;
    expect(store.statusWrites).toBe(1);
    await writer.stop();
    await writer.report(ref, entry('node-a', 8));
    expect(store.statusWrites).toBe(1);
  });

  it('rejects an entry for another node or with bad counts, naming the field', async () => {
    const { ref, writer } = setup('node-a');
    await expect(writer.report(ref, entry('node-b', 1))).rejects.toThrow(
      /node must be this agent's node "node-a", got "node-b"/,
    );
    await expect(writer.report(ref, { ...entry('node-a', 1), readyReplicas: -1 })).rejects.toBeInstanceOf(InvalidNodeStatusError);
    await expect(writer.report(ref, { ...entry('node-a', 1), replicas: 1.5 })).rejects.toThrow(/replicas must be an integer >= 0, got 1.5/);
    await expect(writer.report({ ...ref, uid: '' }, entry('node-a', 1))).rejects.toThrow(/ref.uid must be a non-empty string/);
    await expect(
      writer.report(ref, { ...entry('node-a', 1), conditions: [{ ...ready()[0]!, type: 'Bogus' as 'Ready' }] }),
    ).rejects.toThrow(/conditions\[0\].type must be one of Ready, Reconciling, Stalled, Progressing, Degraded/);
  });

  it("accepts kstatus's Reconciling and Stalled conditions and writes them through to the top level", async () => {
    const { store, ref, writer } = setup('node-a');
    const stalled: Condition = { ...ready('False')[0]!, type: 'Stalled', status: 'True', reason: 'CheckpointNotFound', message: 'gone' };
    const written = writer.report(ref, { ...entry('node-a', 0), conditions: [...ready('False'), stalled] });
    await writer.flush();
    await written;
    expect(store.statusWrites).toBe(1);
    const stored = await store.get('ns', 'web');
    expect(stored.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'CheckpointNotFound', message: 'node node-a: gone' });
  });
});
