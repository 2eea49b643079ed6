import { describe, expect, it } from 'vitest';
import { FinalizerError, NodeFinalizer, finalizerFor } from '../../../controller/kube/finalizers.js';
import { FakeCrsStore, sampleResource } from './fake-crs-store.js';
import { ManualClock } from './manual-clock.js';

const QUALIFIED = /^[a-z0-9.-]{1,253}\/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

function setup(finalizers?: string[]) {
  const store = new FakeCrsStore();
  const obj = sampleResource();
  if (finalizers) obj.metadata.finalizers = finalizers;
  store.put(obj);
  const clock = new ManualClock();
  const fin = new NodeFinalizer({ client: store, node: 'node-a', clock, random: () => 0 });
  const ref = { namespace: 'ns', name: 'web', uid: 'uid-web', generation: 1 };
  return { store, fin, ref, clock };
}

describe('finalizerFor', () => {
  it('is checkpoint.dev/cleanup-<node> for ordinary node names', () => {
    expect(finalizerFor('worker-1')).toBe('checkpoint.dev/cleanup-worker-1');
    expect(finalizerFor('ip-10-0-0-1.ec2.internal')).toBe('checkpoint.dev/cleanup-ip-10-0-0-1.ec2.internal');
  });

  it('hashes long node names into a valid qualified name, distinct per node', () => {
    const long1 = `${'n'.repeat(100)}.example.com`;
    const long2 = `${'n'.repeat(100)}.example.org`;
    const a = finalizerFor(long1);
    const b = finalizerFor(long2);
    expect(a).toMatch(QUALIFIED);
    expect(b).toMatch(QUALIFIED);
    expect(a).not.toBe(b);
    expect(a.split('/')[1]?.length).toBeLessThanOrEqual(63);
    expect(finalizerFor(long1)).toBe(a); // stable
  });

  it('refuses an empty node name', () => {
    expect(() => finalizerFor('')).toThrow(/node name must not be empty/);
  });
});

describe('NodeFinalizer', () => {
  it('ensure adds the finalizer once, next to others, under a resourceVersion precondition', async () => {
    const { store, fin, ref } = setup(['other.io/keep']);
    await fin.ensure(ref);
    await fin.ensure(ref);
    expect(store.peek('ns', 'web')?.metadata.finalizers).toEqual(['other.io/keep', 'checkpoint.dev/cleanup-node-a']);
    expect(store.patches).toHaveLength(1);
    expect(store.patches[0]?.[0]).toMatchObject({ op: 'replace', path: '/metadata/resourceVersion' });
  });

  it('ensure creates the list when there is none', async () => {
    const { store, fin, ref } = setup();
    await fin.ensure(ref);
    expect(store.peek('ns', 'web')?.metadata.finalizers).toEqual(['checkpoint.dev/cleanup-node-a']);
  });

  it('release removes only this node finalizer and is idempotent', async () => {
    const { store, fin, ref } = setup(['a.io/x', 'checkpoint.dev/cleanup-node-a', 'checkpoint.dev/cleanup-node-b']);
    await fin.release(ref);
    await fin.release(ref);
    expect(store.peek('ns', 'web')?.metadata.finalizers).toEqual(['a.io/x', 'checkpoint.dev/cleanup-node-b']);
    expect(store.patches).toHaveLength(1);
  });

  it('re-reads and retries when another writer changed the finalizers in between', async () => {
    const { store, fin, ref, clock } = setup(['checkpoint.dev/cleanup-node-a']);
    let raced = false;
    store.afterGet = (obj) => {
      if (raced) return;
      raced = true;
      // node-b adds its finalizer in FRONT of ours after we read: our index would now be wrong.
      store.put({ ...obj, metadata: { ...obj.metadata, finalizers: ['checkpoint.dev/cleanup-node-b', ...(obj.metadata.finalizers ?? [])] } });
    };
    const releasing = fin.release(ref);
    // The retry waits out a 50 ms backoff on the injected clock.
    await clock.advance(50);
    await releasing;
    expect(store.peek('ns', 'web')?.metadata.finalizers).toEqual(['checkpoint.dev/cleanup-node-b']);
    expect(store.patches).toHaveLength(2);
  });

  it('release of a resource that is gone or was re-created is a no-op', async () => {
    const { store, fin, ref } = setup(['checkpoint.dev/cleanup-node-a']);
    await fin.release({ ...ref, uid: 'someone-else' });
    expect(store.peek('ns', 'web')?.metadata.finalizers).toEqual(['checkpoint.dev/cleanup-node-a']);
    store.delete('ns', 'web');
    await expect(fin.release(ref)).resolves.toBeUndefined();
  });

  it('ensure fails with ResourceGone / ResourceDeleting instead of adding a finalizer', async () => {
    const { store, fin, ref } = setup();
    const obj = store.peek('ns', 'web');
    if (!obj) throw new Error('missing');
    store.put({ ...obj, metadata: { ...obj.metadata, deletionTimestamp: '2025-01-01T00:00:00Z' } });
    await expect(fin.ensure(ref)).rejects.toMatchObject({ code: 'ResourceDeleting' });
    store.delete('ns', 'web');
    const err = await fin.ensure(ref).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FinalizerError);
    expect(err).toMatchObject({ code: 'ResourceGone' });
  });
});
