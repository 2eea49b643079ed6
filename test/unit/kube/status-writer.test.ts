import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../controller/kube/api-error.js';
import { InvalidNodeStatusError, StatusWriter, entryFieldManager, roundInterval } from '../../../controller/kube/status-writer.js';
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

async function settle(clock: ManualClock, p: Promise<unknown>, ms = 250): Promise<void> {
  await clock.advance(ms);
  await p;
}

describe('StatusWriter', () => {
  it("applies only this node's entry under its own field manager, then the summary under the shared one, conditional on the answer's resourceVersion", async () => {
    const { clock, store, ref, writer } = setup();
    const done: Array<Promise<void>> = [];
    for (let i = 0; i <= 12; i++) done.push(writer.report(ref, entry('node-a', i)));
    await flush();
    expect(store.statusWrites).toBe(0); // still inside the debounce window
    await clock.advance(250);
    await Promise.all(done);
    const [own, summary] = store.applies;
    expect(store.applies).toHaveLength(2);
    expect(own).toMatchObject({ fieldManager: 'crs-agent/node-a', status: { nodes: [{ node: 'node-a', readyReplicas: 12 }] } });
    expect(Object.keys(own!.status)).toEqual(['nodes']);
    expect(own!.resourceVersion).toBeUndefined(); // entries never conflict
    expect(summary).toMatchObject({ fieldManager: 'crs-controller', status: { readyReplicas: 12, nodeCount: 1 } });
    expect(summary!.status.nodes).toBeUndefined(); // the shared manager never owns an entry
    expect(summary!.resourceVersion).toBeDefined();
    const status = store.peek('ns', 'web')?.status;
    expect(status?.nodes).toHaveLength(1);
    expect(status).toMatchObject({ readyReplicas: 12, replicas: 12, restoringReplicas: 0, observedGeneration: 1 });
    expect(status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(writer.stats()).toMatchObject({ writes: 2, summaryWrites: 1, conflicts: 0 });
  });

  it('writes at most one round per second per resource, one in flight; reports meanwhile are written once, the latest', async () => {
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
    expect(store.statusWrites).toBe(2); // entry + summary
    await clock.advance(250);
    await Promise.all(later);
    expect(store.statusWrites).toBe(4);
    expect(store.peek('ns', 'web')?.status?.readyReplicas).toBe(3);
    // Not in flight now: the next report still waits for a full second after the last round began.
    const next = writer.report(ref, entry('node-a', 4));
    await clock.advance(250);
    expect(store.statusWrites).toBe(4);
    expect(clock.pendingDelays()).toEqual([750]);
    await settle(clock, next, 750);
    expect(store.peek('ns', 'web')?.status?.readyReplicas).toBe(4);
  });

  it('paces rounds by the node count it sees: 40 entries on the resource stretch the interval to 40 x 50 ms', async () => {
    const { clock, store, ref, writer } = setup();
    const obj = store.peek('ns', 'web')!;
    const others = Array.from({ length: 39 }, (_, i) => entry(`node-${i}`, 12));
    store.put({ ...obj, status: { ...obj.status, nodes: others } });
    await settle(clock, writer.report(ref, entry('node-a', 1)));
    expect(store.peek('ns', 'web')?.status?.nodes).toHaveLength(40);
    const next = writer.report(ref, entry('node-a', 2));
    await clock.advance(250);
    expect(clock.pendingDelays()).toEqual([1750]); // 2000 ms after the last round began, not 1000
    await clock.advance(1000);
    expect(store.peek('ns', 'web')?.status?.nodes?.find((n) => n.node === 'node-a')?.readyReplicas).toBe(1);
    await settle(clock, next, 750);
    expect(store.peek('ns', 'web')?.status?.nodes?.find((n) => n.node === 'node-a')?.readyReplicas).toBe(2);
  });

  it('roundInterval: minIntervalMs for few nodes, nodeCount x perNodeMs beyond', () => {
    expect(roundInterval(1000, 50, 0)).toBe(1000);
    expect(roundInterval(1000, 50, 20)).toBe(1000);
    expect(roundInterval(1000, 50, 100)).toBe(5000);
    expect(roundInterval(1000, 0, 100)).toBe(1000);
  });

  it('writes nothing for an unchanged entry, and checks against the stored object again after refreshMs', async () => {
    const { clock, store, ref, writer } = setup();
    await settle(clock, writer.report(ref, entry('node-a', 12)));
    const gets = store.gets;
    await settle(clock, writer.report(ref, entry('node-a', 12)), 1000);
    expect(store.gets).toBe(gets); // remembered, not re-read
    expect(writer.stats()).toMatchObject({ writes: 2, unchanged: 1 });
    // Someone removed the entry; after refreshMs the writer looks and writes it again.
    const obj = store.peek('ns', 'web')!;
    store.put({ ...obj, status: { ...obj.status, nodes: [] } });
    await clock.advance(60_000);
    await settle(clock, writer.report(ref, entry('node-a', 12)));
    expect(store.peek('ns', 'web')?.status?.nodes?.map((n) => n.node)).toEqual(['node-a']);
    expect(store.gets).toBe(gets + 1);
  });

  it('a summary superseded by a later write is dropped; the later writer derives it from both entries', async () => {
    const clock = new ManualClock();
    const store = new FakeCrsStore();
    const obj = store.put(sampleResource());
    const ref = { namespace: 'ns', name: 'web', uid: obj.metadata.uid, generation: 1 };
    const a = new StatusWriter({ client: store, node: 'node-a', clock, random: () => 0 });
    const b = new StatusWriter({ client: store, node: 'node-b', clock, random: () => 0 });
    // node-b's entry lands between node-a's entry and node-a's summary.
    store.afterApply = (apply) => {
      if (apply.fieldManager !== 'crs-agent/node-a') return;
      store.afterApply = undefined;
      const current = store.peek('ns', 'web')!;
      store.put({ ...current, status: { ...current.status, nodes: [...(current.status?.nodes ?? []), entry('node-b', 5, 5)] } });
    };
    await settle(clock, a.report(ref, entry('node-a', 12)));
    expect(a.stats()).toMatchObject({ conflicts: 1, summaryWrites: 0 });
    expect(store.peek('ns', 'web')?.status?.readyReplicas).toBeUndefined(); // no summary from node-a's stale view
    // node-b's writer, reporting that entry, derives the summary from both.
    await settle(clock, b.report(ref, entry('node-b', 5, 5)));
    expect(b.stats()).toMatchObject({ conflicts: 0, summaryWrites: 1 });
    const status = store.peek('ns', 'web')?.status;
    expect(status?.nodes?.map((n) => n.node)).toEqual(['node-a', 'node-b']);
    expect(status).toMatchObject({ replicas: 17, readyReplicas: 17, nodeCount: 2 });
  });

  it('drops a report about a resource that is gone, or was re-created under another uid', async () => {
    const { clock, store, ref, writer } = setup();
    store.delete('ns', 'web');
    await settle(clock, writer.report(ref, entry('node-a', 1)));
    store.put(sampleResource('web', 'uid-new'));
    await settle(clock, writer.report(ref, entry('node-a', 1)), 1000);
    expect(store.statusWrites).toBe(0);
    expect(writer.stats().dropped).toBe(2);
    expect(clock.pending).toBe(0); // nothing left to retry
  });

  it('when the apiserver is unavailable, resolves the report and retries in the background with backoff', async () => {
    const { clock, store, ref, writer } = setup();
    const unavailable = new ApiError('Unavailable', 'apiserver unreachable', undefined);
    store.failNext = [unavailable, unavailable];
    await settle(clock, writer.report(ref, entry('node-a', 4))); // resolved although nothing is written yet
    expect(store.statusWrites).toBe(0);
    expect(clock.pendingDelays()).toEqual([1000]);
    await clock.advance(1000);
    expect(clock.pendingDelays()).toEqual([2000]);
    await clock.advance(2000);
    expect(store.statusWrites).toBe(2);
    expect(store.peek('ns', 'web')?.status?.readyReplicas).toBe(4);
    expect(writer.stats()).toMatchObject({ failures: 2, writes: 2 });
    expect(clock.pending).toBe(0);
  });

  it('a summary write that fails (not a conflict) is retried from a fresh read', async () => {
    const { clock, store, ref, writer } = setup();
    store.afterApply = (apply) => {
      if (apply.fieldManager === 'crs-agent/node-a') store.failNext = [new ApiError('Unavailable', 'apiserver unreachable', undefined)];
    };
    await settle(clock, writer.report(ref, entry('node-a', 12)));
    store.afterApply = undefined;
    expect(store.peek('ns', 'web')?.status?.readyReplicas).toBeUndefined();
    expect(writer.stats()).toMatchObject({ failures: 1 });
    await clock.advance(1000);
    await flush();
    expect(store.peek('ns', 'web')?.status).toMatchObject({ readyReplicas: 12, nodeCount: 1 });
    expect(store.applies.filter((x) => x.fieldManager === 'crs-agent/node-a')).toHaveLength(1); // the entry was stored already
  });

  it('remove() deletes only this node entry; a removal gives up after maxConflictRetries conflicts and retries later', async () => {
    const clock = new ManualClock();
    const store = new FakeCrsStore();
    const obj = store.put({ ...sampleResource(), status: { nodes: [entry('node-a', 1), entry('node-b', 2)] } });
    const writer = new StatusWriter({ client: store, node: 'node-a', clock, random: () => 0, maxConflictRetries: 2 });
    store.afterGet = (o) => store.put(o); // someone always writes in between
    const p = writer.remove({ namespace: 'ns', name: 'web', uid: obj.metadata.uid, generation: 1 });
    await settle(clock, p, 250 + 50 + 100);
    expect(writer.stats()).toMatchObject({ conflicts: 2, failures: 1, writes: 0 });
    store.afterGet = undefined;
    await clock.advance(1000);
    expect(writer.stats().writes).toBe(1);
    expect(store.peek('ns', 'web')?.status?.nodes?.map((n) => n.node)).toEqual(['node-b']);
    expect(store.peek('ns', 'web')?.status?.replicas).toBe(12);
  });

  it('flush() writes pending reports at once; after stop() reports are not written', async () => {
    const { store, ref, writer } = setup();
    const p = writer.report(ref, entry('node-a', 7));
    await writer.flush();
    await p;
    expect(store.statusWrites).toBe(2);
    await writer.stop();
    await writer.report(ref, entry('node-a', 8));
    expect(store.statusWrites).toBe(2);
  });

  it("names a long node's field manager within the apiserver's 128 characters, distinctly", () => {
    const long = 'n'.repeat(200);
    expect(entryFieldManager('node-a')).toBe('crs-agent/node-a');
    expect(entryFieldManager(long).length).toBeLessThanOrEqual(128);
    expect(entryFieldManager(long)).not.toBe(entryFieldManager(`${long}x`));
  });

  it('rejects an entry for another node or with bad counts, naming the field', async () => {
    const { ref, writer } = setup('node-a');
    await expect(writer.report(ref, entry('node-b', 1))).rejects.toThrow(/node must be this agent's node "node-a", got "node-b"/);
    await expect(writer.report(ref, { ...entry('node-a', 1), readyReplicas: -1 })).rejects.toBeInstanceOf(InvalidNodeStatusError);
    await expect(writer.report(ref, { ...entry('node-a', 1), replicas: 1.5 })).rejects.toThrow(/replicas must be an integer >= 0, got 1.5/);
    await expect(writer.report({ ...ref, uid: '' }, entry('node-a', 1))).rejects.toThrow(/ref.uid must be a non-empty string/);
    await expect(writer.report(ref, { ...entry('node-a', 1), conditions: [{ ...ready()[0]!, type: 'Bogus' as 'Ready' }] })).rejects.toThrow(
      /conditions\[0\].type must be one of Ready, Reconciling, Stalled, Progressing, Degraded/,
    );
  });

  it("accepts kstatus's Reconciling and Stalled conditions and writes them through to the top level", async () => {
    const { store, ref, writer } = setup('node-a');
    const stalled: Condition = { ...ready('False')[0]!, type: 'Stalled', status: 'True', reason: 'CheckpointNotFound', message: 'gone' };
    const written = writer.report(ref, { ...entry('node-a', 0), conditions: [...ready('False'), stalled] });
    await writer.flush();
    await written;
    expect(store.statusWrites).toBe(2);
    const stored = await store.get('ns', 'web');
    expect(stored.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'CheckpointNotFound',
      message: 'node node-a: gone',
    });
  });
});
