// The restart / re-list / resync policy of ResilientInformer, driven through client-node's REAL
// ListWatch with a scripted Watch and list function (no apiserver) and a manual clock.
import { describe, expect, it } from 'vitest';
import { ResilientInformer, type WatchLike } from '../../../controller/kube/informer.js';
import { ManualClock, flush } from './manual-clock.js';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion: string; uid: string };
  spec?: { n: number };
}

function obj(name: string, rv: number, n = 0): Obj {
  return {
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace: 'ns', resourceVersion: String(rv), uid: `uid-${name}` },
    spec: { n },
  };
}

interface OpenWatch {
  params: Record<string, string | number | boolean | undefined>;
  send(type: string, o: unknown): void;
  end(err: unknown): void;
  aborted: boolean;
}

/** A Watch whose connections the test opens, feeds and breaks. */
class ScriptedWatch implements WatchLike {
  opened: OpenWatch[] = [];
  get current(): OpenWatch {
    const w = this.opened.at(-1);
    if (!w) throw new Error('no watch opened');
    return w;
  }
  async watch(
    _path: string,
    params: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    let ended = false;
    const w: OpenWatch = {
      params,
      aborted: false,
      send: (type, o) => {
        if (!ended) callback(type, o);
      },
      end: (err) => {
        if (ended) return;
        ended = true;
        done(err);
      },
    };
    // Like the real Watch: aborting the request ends it with an AbortError.
    controller.signal.addEventListener('abort', () => {
      w.aborted = true;
      w.end(Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' }));
    });
    this.opened.push(w);
    return controller;
  }
}

function setup(options: { resyncPeriodMs?: number } = {}) {
  const clock = new ManualClock();
  const watch = new ScriptedWatch();
  let listItems: Obj[] = [obj('a', 10), obj('b', 11)];
  let listRv = 100;
  let listFailures = 0;
  let lists = 0;
  const events: string[] = [];
  const informer = new ResilientInformer<Obj>({
    name: 'test',
    path: '/apis/checkpoint.dev/v1alpha1/checkpointreplicasets',
    list: async () => {
      lists++;
      if (listFailures > 0) {
        listFailures--;
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
      }
      return { metadata: { resourceVersion: String(listRv) }, items: listItems };
    },
    watch,
    clock,
    random: () => 0, // jitter off: delays are the policy's maxima
    resyncPeriodMs: options.resyncPeriodMs ?? 0,
    watchTimeoutSeconds: 60,
  });
  informer.on({
    add: (o) => events.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`),
    update: (o, cause) => events.push(`${cause} ${o.metadata.name}@${o.metadata.resourceVersion}`),
    delete: (o) => events.push(`delete ${o.metadata.name}`),
  });
  return {
    clock,
    watch,
    informer,
    events,
    lists: () => lists,
    setList(items: Obj[], rv: number) {
      listItems = items;
      listRv = rv;
    },
    failNextLists(n: number) {
      listFailures = n;
    },
  };
}

describe('ResilientInformer', () => {
  it('lists, reports synced, then watches from the list resourceVersion with a timeout and bookmarks', async () => {
    const t = setup();
    expect(t.informer.hasSynced()).toBe(false);
    t.informer.start();
    await t.informer.waitForSync();
    expect(t.informer.hasSynced()).toBe(true);
    expect(t.events).toEqual(['add a@10', 'add b@11']);
    expect(t.watch.opened).toHaveLength(1);
    expect(t.watch.current.params).toMatchObject({ resourceVersion: '100', timeoutSeconds: 60, allowWatchBookmarks: true });
    expect(
      t.informer
        .list()
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['a', 'b']);
    await t.informer.stop();
  });

  it('caches listed and watched objects without managedFields and the last-applied annotation, other annotations kept', async () => {
    const t = setup();
    const heavy = (name: string, rv: number, annotations: Record<string, string>): Obj =>
      ({ ...obj(name, rv), metadata: { ...obj(name, rv).metadata, managedFields: [{ manager: 'kubectl' }], annotations } }) as Obj;
    const applied = { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}' };
    t.setList([heavy('a', 10, applied)], 100);
    t.informer.start();
    await t.informer.waitForSync();
    t.watch.current.send('ADDED', heavy('c', 101, { ...applied, team: 'x' }));
    const a = t.informer.get('a', 'ns')?.metadata as Record<string, unknown>;
    const c = t.informer.get('c', 'ns')?.metadata as Record<string, unknown>;
    expect(a).not.toHaveProperty('managedFields');
    expect(a).not.toHaveProperty('annotations'); // only the last-applied one was there
    expect(c).not.toHaveProperty('managedFields');
    expect(c.annotations).toEqual({ team: 'x' });
    await t.informer.stop();
  });

  it('delivers watch adds, updates and deletes and keeps the cache', async () => {
    const t = setup();
    t.informer.start();
    await t.informer.waitForSync();
    t.watch.current.send('ADDED', obj('c', 101));
    t.watch.current.send('MODIFIED', obj('a', 102, 5));
    t.watch.current.send('DELETED', obj('b', 103));
    expect(t.events.slice(2)).toEqual(['add c@101', 'watch a@102', 'delete b']);
    expect(t.informer.get('a', 'ns')?.spec?.n).toBe(5);
    expect(t.informer.get('b', 'ns')).toBeUndefined();
    await t.informer.stop();
  });

  it('after a watch error, waits out a growing backoff, then resumes the watch from the last resourceVersion without re-listing', async () => {
    const t = setup();
    t.informer.start();
    await t.informer.waitForSync();
    t.watch.current.send('MODIFIED', obj('a', 150));
    const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

    t.watch.current.end(reset());
    await flush();
    expect(t.watch.opened).toHaveLength(1); // client-node alone would stop here for good
    expect(t.clock.pendingDelays()).toEqual([1000]);
    await t.clock.advance(1000);
    expect(t.watch.opened).toHaveLength(2);
    expect(t.watch.current.params.resourceVersion).toBe('150');
    expect(t.lists()).toBe(1);

    // Consecutive failures with no event in between: 2 s, 4 s, ...
    t.watch.current.end(reset());
    await flush();
    expect(t.clock.pendingDelays()).toEqual([2000]);
    await t.clock.advance(2000);
    t.watch.current.end(reset());
    await flush();
    expect(t.clock.pendingDelays()).toEqual([4000]);
    await t.clock.advance(4000);
    expect(t.watch.opened).toHaveLength(4);

    // An event proves the connection: the next failure starts again at 1 s.
    t.watch.current.send('MODIFIED', obj('a', 151));
    t.watch.current.end(reset());
    await flush();
    expect(t.clock.pendingDelays()).toEqual([1000]);
    expect(t.informer.stats().errors).toBe(4);
    await t.informer.stop();
  });

  it('caps the restart backoff at 60 s while the apiserver stays away', async () => {
    const t = setup();
    t.failNextLists(20);
    t.informer.start();
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      await flush();
      const [d] = t.clock.pendingDelays();
      if (d === undefined) throw new Error('no restart scheduled');
      delays.push(d);
      await t.clock.advance(d);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
    expect(t.informer.hasSynced()).toBe(false);
    await t.informer.stop();
  });

  it('re-lists after 410 Gone and reports objects that vanished meanwhile as deleted', async () => {
    const t = setup();
    t.informer.start();
    await t.informer.waitForSync();
    // While disconnected, b was deleted and d created; the watch's resourceVersion is too old.
    t.setList([obj('a', 10), obj('d', 300)], 310);
    t.watch.current.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    t.watch.current.end(null);
    await flush();
    expect(t.lists()).toBe(2);
    expect(t.events.slice(2).sort()).toEqual(['add d@300', 'delete b']);
    expect(t.watch.current.params.resourceVersion).toBe('310');
    expect(t.informer.stats().errors).toBe(0); // a 410 is not an error, no backoff
    await t.informer.stop();
  });

  it('re-lists after a failed list once the backoff has passed', async () => {
    const t = setup();
    t.failNextLists(1);
    t.informer.start();
    await flush();
    expect(t.informer.hasSynced()).toBe(false);
    expect(t.watch.opened).toHaveLength(0);
    await t.clock.advance(1000);
    await t.informer.waitForSync();
    expect(t.lists()).toBe(2);
    expect(t.events).toEqual(['add a@10', 'add b@11']);
    await t.informer.stop();
  });

  it('aborts a watch that stays open past its deadline and restarts it', async () => {
    const t = setup();
    t.informer.start();
    await t.informer.waitForSync();
    const first = t.watch.current;
    await t.clock.advance(60_000 + 30_000 - 1);
    expect(first.aborted).toBe(false);
    await t.clock.advance(1);
    expect(first.aborted).toBe(true);
    expect(t.informer.stats().deadlineAborts).toBe(1);
    await t.clock.advance(1000);
    expect(t.watch.opened).toHaveLength(2);
    await t.informer.stop();
  });

  it('resumes at once, without backoff, when the apiserver ends a watch normally (timeout)', async () => {
    const t = setup();
    t.informer.start();
    await t.informer.waitForSync();
    t.watch.current.send('BOOKMARK', { metadata: { resourceVersion: '120' } });
    t.watch.current.end(null);
    await flush();
    expect(t.watch.opened).toHaveLength(2);
    expect(t.watch.current.params.resourceVersion).toBe('120');
    await t.informer.stop();
  });

  it('re-emits every cached object as an update at each resync period', async () => {
    const t = setup({ resyncPeriodMs: 300_000 });
    t.informer.start();
    await t.informer.waitForSync();
    await t.clock.advance(299_999);
    expect(t.events).toEqual(['add a@10', 'add b@11']);
    await t.clock.advance(1);
    expect(t.events.slice(2).sort()).toEqual(['resync a@10', 'resync b@11']);
    await t.clock.advance(300_000);
    expect(t.events).toHaveLength(6);
    expect(t.informer.stats().resyncs).toBe(2);
    await t.informer.stop();
  });

  it('stop() aborts the watch and nothing restarts afterwards', async () => {
    const t = setup({ resyncPeriodMs: 1000 });
    t.informer.start();
    await t.informer.waitForSync();
    const w = t.watch.current;
    await t.informer.stop();
    expect(w.aborted).toBe(true);
    expect(t.clock.pending).toBe(0);
    await t.clock.advance(600_000);
    expect(t.watch.opened).toHaveLength(1);
    expect(t.informer.stats().errors).toBe(0);
  });

  it('keeps delivering to other handlers when one throws', async () => {
    const t = setup();
    const seen: string[] = [];
    t.informer.on({
      add: () => {
        throw new Error('handler bug');
      },
    });
    t.informer.on({ add: (o) => seen.push(o.metadata.name) });
    t.informer.start();
    await t.informer.waitForSync();
    expect(seen).toEqual(['a', 'b']);
    await t.informer.stop();
  });

  it('rejects bad options with a message naming the option', () => {
    const base = { name: 'x', path: '/x', list: async () => ({ items: [] }), watch: new ScriptedWatch() };
    expect(() => new ResilientInformer({ ...base, resyncPeriodMs: -1 })).toThrow(/resyncPeriodMs must be >= 0/);
    expect(() => new ResilientInformer({ ...base, watchTimeoutSeconds: 0 })).toThrow(/watchTimeoutSeconds must be a positive integer/);
    expect(() => new ResilientInformer({ ...base, restartBackoff: { initialMs: 0, maxMs: 1 } })).toThrow(/restartBackoff.initialMs/);
  });
});
