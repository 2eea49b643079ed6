import type { CoreV1Event } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../controller/kube/api-error.js';
import { COMBINED_PREFIX, EventAggregator } from '../../../controller/kube/event-aggregator.js';
import { KubeEventRecorder, type EventSink } from '../../../controller/kube/events.js';
import { ManualClock } from './manual-clock.js';

class FakeSink implements EventSink {
  events = new Map<string, CoreV1Event>();
  creates = 0;
  patches = 0;
  failNext: ApiError[] = [];
  async create(namespace: string, event: CoreV1Event): Promise<CoreV1Event> {
    this.creates++;
    const err = this.failNext.shift();
    if (err) throw err;
    const name = event.metadata?.name ?? '';
    if (this.events.has(name)) throw new ApiError('Conflict', 'already exists', 409, 'AlreadyExists');
    const stored = { ...structuredClone(event), metadata: { ...event.metadata, namespace } };
    this.events.set(name, stored);
    return stored;
  }
  async patch(_ns: string, name: string, patch: { count: number; lastTimestamp: string; message: string }): Promise<CoreV1Event> {
    this.patches++;
    const err = this.failNext.shift();
    if (err) throw err;
    const e = this.events.get(name);
    if (!e) throw new ApiError('NotFound', 'not found', 404);
    Object.assign(e, { count: patch.count, lastTimestamp: new Date(patch.lastTimestamp), message: patch.message });
    return e;
  }
  all(): CoreV1Event[] {
    return [...this.events.values()];
  }
}

const ref = { namespace: 'ns', name: 'web', uid: 'uid-web', generation: 2 };

function setup(options: { burst?: number; refillMs?: number } = {}) {
  const clock = new ManualClock();
  const sink = new FakeSink();
  const recorder = new KubeEventRecorder({ sink, node: 'node-a', clock, ...options });
  return { clock, sink, recorder };
}

describe('KubeEventRecorder', () => {
  it('creates an Event on the resource with involvedObject uid, reporting component and instance', async () => {
    const { sink, recorder } = setup();
    recorder.record(ref, 'Normal', 'RestoresStarted', 'restoring 10 replicas');
    await recorder.flush();
    const [e] = sink.all();
    expect(e).toMatchObject({
      involvedObject: { apiVersion: 'checkpoint.dev/v1alpha1', kind: 'CheckpointReplicaSet', name: 'web', namespace: 'ns', uid: 'uid-web' },
      type: 'Normal',
      reason: 'RestoresStarted',
      message: 'restoring 10 replicas',
      count: 1,
      source: { component: 'crs-controller', host: 'node-a' },
      reportingComponent: 'crs-controller',
      reportingInstance: 'node-a',
    });
    expect(e?.metadata?.name).toMatch(/^web\.[0-9a-f]+$/);
  });

  it('folds the same event within 10 minutes into one Event with a growing count', async () => {
    const { sink, recorder, clock } = setup();
    for (let i = 0; i < 5; i++) {
      recorder.record(ref, 'Warning', 'RestoreFailed', 'replica r1: RestoreRace');
      await clock.advance(60_000);
    }
    await recorder.flush();
    expect(sink.all()).toHaveLength(1);
    expect(sink.all()[0]?.count).toBe(5);
    expect(sink.all()[0]?.lastTimestamp?.toISOString()).toBe('2025-01-01T00:04:00.000Z');
    expect(recorder.stats()).toMatchObject({ created: 1, updated: 4 });
    // More than 10 minutes later: a new Event.
    await clock.advance(11 * 60_000);
    recorder.record(ref, 'Warning', 'RestoreFailed', 'replica r1: RestoreRace');
    await recorder.flush();
    expect(sink.all()).toHaveLength(2);
  });

  it('combines more than 10 distinct messages of one reason into one "(combined from similar events)" Event', async () => {
    const { sink, recorder } = setup();
    for (let i = 0; i < 20; i++) recorder.record(ref, 'Warning', 'RestoreFailed', `replica r${i}: RestoreRace`);
    await recorder.flush();
    expect(sink.all()).toHaveLength(11);
    const combined = sink.all().find((e) => e.message?.startsWith(COMBINED_PREFIX));
    expect(combined).toMatchObject({ count: 10, message: `${COMBINED_PREFIX}replica r19: RestoreRace` });
  });

  it('rate-limits a storm per object: a burst, then one event per refill interval', async () => {
    const { sink, recorder, clock } = setup({ burst: 5, refillMs: 10_000 });
    for (let i = 0; i < 50; i++) recorder.record(ref, 'Warning', 'RestoreFailed', 'same');
    await recorder.flush();
    expect(sink.creates + sink.patches).toBe(5);
    expect(recorder.stats().dropped).toBe(45);
    // Another object has its own bucket.
    recorder.record({ ...ref, name: 'other', uid: 'uid-other' }, 'Normal', 'RestoresStarted', 'x');
    await clock.advance(10_000);
    recorder.record(ref, 'Warning', 'RestoreFailed', 'same');
    recorder.record(ref, 'Warning', 'RestoreFailed', 'same');
    await recorder.flush();
    expect(sink.creates + sink.patches).toBe(7);
    expect(sink.all().find((e) => e.involvedObject.name === 'web')?.count).toBe(6);
  });

  it('never throws: bad input is logged and counted, apiserver failures are counted', async () => {
    const { sink, recorder } = setup();
    expect(() => recorder.record(ref, 'Info' as 'Normal', 'RestoresStarted', 'x')).not.toThrow();
    expect(() => recorder.record(ref, 'Normal', 'not camel', 'x')).not.toThrow();
    sink.failNext = [new ApiError('Unavailable', 'apiserver unreachable', undefined)];
    recorder.record(ref, 'Normal', 'RestoresStarted', 'x');
    recorder.record(ref, 'Normal', 'RestoresFinished', 'y');
    await recorder.flush();
    expect(recorder.stats()).toMatchObject({ invalid: 2, failed: 1, created: 1 });
  });

  it('creates a new Event when the one being counted has expired on the server', async () => {
    const { sink, recorder } = setup();
    recorder.record(ref, 'Normal', 'RestoresStarted', 'x');
    await recorder.flush();
    sink.events.clear();
    recorder.record(ref, 'Normal', 'RestoresStarted', 'x');
    await recorder.flush();
    expect(sink.all()).toHaveLength(1);
    expect(sink.all()[0]?.count).toBe(1);
  });

  it('cuts messages to 1024 characters', async () => {
    const { sink, recorder } = setup();
    recorder.record(ref, 'Warning', 'RestoreFailed', 'x'.repeat(5000));
    await recorder.flush();
    expect(sink.all()[0]?.message).toHaveLength(1024);
  });
});

describe('EventAggregator', () => {
  it('refills tokens over time, never above the burst', () => {
    const agg = new EventAggregator({ burst: 2, refillMs: 1000 });
    const e = { uid: 'u', type: 'Normal', reason: 'R', message: 'm' };
    expect(agg.admit(e, 0).admitted).toBe(true);
    expect(agg.admit(e, 0).admitted).toBe(true);
    expect(agg.admit(e, 0).admitted).toBe(false);
    expect(agg.admit(e, 1000).admitted).toBe(true);
    expect(agg.admit(e, 1000).admitted).toBe(false);
    expect(agg.admit(e, 1_000_000).admitted).toBe(true);
    expect(agg.admit(e, 1_000_000).admitted).toBe(true);
    expect(agg.admit(e, 1_000_000).admitted).toBe(false);
  });

  it('rejects bad options naming them', () => {
    expect(() => new EventAggregator({ burst: 0 })).toThrow(/burst must be > 0/);
  });

  it('drop streaks are bounded: objects deleted mid-streak do not pile up', async () => {
    const clock = new ManualClock();
    const warnings: string[] = [];
    const logger = { debug: () => undefined, info: () => undefined, warn: (msg: string) => warnings.push(msg), error: () => undefined, with: () => logger };
    const recorder = new KubeEventRecorder({
      sink: new FakeSink(),
      node: 'node-a',
      clock,
      burst: 1,
      refillMs: 3_600_000,
      maxEntries: 100,
      maxBacklog: 100_000,
      logger,
    });
    // 5000 resources, each refused once after its burst and never heard of again (deleted).
    for (let i = 0; i < 5000; i++) {
      const r = { ...ref, name: `gone-${i}`, uid: `uid-${i}` };
      recorder.record(r, 'Warning', 'RestoreFailed', 'x');
      recorder.record(r, 'Warning', 'RestoreFailed', 'x');
    }
    await recorder.flush();
    expect(recorder.stats().dropped).toBe(5000);
    expect(warnings).toHaveLength(5000); // one warning per streak
    const sizes = recorder.tableSizes();
    expect(sizes.dropStreaks).toBeLessThanOrEqual(100);
    expect(Math.max(sizes.buckets, sizes.similar, sizes.seen)).toBeLessThanOrEqual(100);
  });

  it('one warning per streak; an admitted event ends the streak', () => {
    const agg = new EventAggregator();
    expect(agg.noteDropped('ns/a')).toBe(true);
    expect(agg.noteDropped('ns/a')).toBe(false);
    agg.noteAdmitted('ns/a');
    expect(agg.noteDropped('ns/a')).toBe(true);
  });
});
