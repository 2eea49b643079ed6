import { describe, expect, it } from 'vitest';
import { WorkQueue, type WorkResult } from '../../../controller/kube/workqueue.js';
import { keyOf, splitKey } from '../../../controller/vocabulary.js';
import type { WorkQueueMetricsSink } from '../../../controller/kube/workqueue-metrics.js';
import { ManualClock, flush } from './manual-clock.js';

/** A promise the test resolves by hand. */
interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

class RecordingMetrics implements WorkQueueMetricsSink {
  adds = 0;
  retries = 0;
  depths: number[] = [];
  queuedSeconds: number[] = [];
  workedSeconds: number[] = [];
  added() {
    this.adds++;
  }
  depth(_q: string, d: number) {
    this.depths.push(d);
  }
  retried() {
    this.retries++;
  }
  queued(_q: string, s: number) {
    this.queuedSeconds.push(s);
  }
  worked(_q: string, s: number) {
    this.workedSeconds.push(s);
  }
}

function setup(workers = 2) {
  const clock = new ManualClock();
  const metrics = new RecordingMetrics();
  const queue = new WorkQueue({ name: 'test', workers, clock, metrics });
  return { clock, metrics, queue };
}

describe('WorkQueue', () => {
  it('merges repeated adds of a waiting key into one run', async () => {
    const { queue, metrics } = setup();
    const runs: string[] = [];
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/a');
    expect(queue.length).toBe(2);
    queue.start(async (key) => {
      runs.push(key);
    });
    await flush();
    expect(runs).toEqual(['ns/a', 'ns/b']);
    expect(metrics.adds).toBe(4);
  });

  it('never runs one key twice at once, and re-runs it once after a run during which it was added', async () => {
    const { queue } = setup(4);
    let running = 0;
    let maxRunning = 0;
    const gates: Deferred[] = [];
    queue.start(async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const gate = deferred();
      gates.push(gate);
      await gate.promise;
      running--;
    });
    queue.add('ns/a');
    await flush();
    expect(gates).toHaveLength(1);
    // Three adds while the first run is in flight: merged into ONE more run, started only after.
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/a');
    await flush();
    expect(gates).toHaveLength(1);
    expect(queue.inFlight).toBe(1);
    gates[0]?.resolve();
    await flush();
    expect(gates).toHaveLength(2);
    gates[1]?.resolve();
    await flush();
    expect(gates).toHaveLength(2);
    expect(maxRunning).toBe(1);
    expect(queue.inFlight).toBe(0);
  });

  it('runs different keys on up to N workers in parallel', async () => {
    const { queue } = setup(2);
    const started: string[] = [];
    const gates = new Map<string, Deferred>();
    queue.start(async (key) => {
      started.push(key);
      const gate = deferred();
      gates.set(key, gate);
      await gate.promise;
    });
    for (const k of ['ns/a', 'ns/b', 'ns/c']) queue.add(k);
    await flush();
    expect(started).toEqual(['ns/a', 'ns/b']);
    expect(queue.length).toBe(1);
    gates.get('ns/b')?.resolve();
    await flush();
    expect(started).toEqual(['ns/a', 'ns/b', 'ns/c']);
  });

  it('backs off per key exponentially from 500 ms, capped at 5 min, and forgets on success', async () => {
    const { queue, clock, metrics } = setup(1);
    let failUntil = 12;
    const runTimes: number[] = [];
    const t0 = clock.now();
    queue.start(async () => {
      runTimes.push(clock.now() - t0);
      if (runTimes.length <= failUntil) throw Object.assign(new Error('boom'), { code: 'Unavailable' });
    });
    queue.add('ns/a');
    await flush();
    const expectedDelays = [500, 1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000];
    for (const delay of expectedDelays) {
      expect(clock.pendingDelays()).toEqual([delay]);
      await clock.advance(delay);
    }
    // The 13th run succeeded: failures forgotten, nothing pending.
    expect(runTimes).toHaveLength(13);
    expect(queue.numRequeues('ns/a')).toBe(0);
    expect(clock.pending).toBe(0);
    expect(metrics.retries).toBe(12);
    // A new failure starts again at the initial backoff.
    failUntil = 100;
    queue.add('ns/a');
    await flush();
    expect(clock.pendingDelays()).toEqual([500]);
  });

  it('keeps separate backoff per key', async () => {
    const { queue, clock } = setup(2);
    queue.start(async (key) => {
      if (key === 'ns/bad') throw new Error('always fails');
    });
    queue.add('ns/bad');
    await flush();
    await clock.advance(500);
    expect(queue.numRequeues('ns/bad')).toBe(2);
    queue.add('ns/good');
    await flush();
    expect(queue.numRequeues('ns/good')).toBe(0);
    expect(clock.pendingDelays()).toEqual([1000]);
  });

  it('honours requeueAfterMs from the handler, and addAfter keeps the earliest due time', async () => {
    const { queue, clock } = setup(1);
    const runs: number[] = [];
    const t0 = clock.now();
    let result: WorkResult | undefined = { requeueAfterMs: 30_000 };
    queue.start(async () => {
      runs.push(clock.now() - t0);
      const r = result;
      result = undefined;
      return r;
    });
    queue.add('ns/a');
    await flush();
    expect(clock.pendingDelays()).toEqual([30_000]);
    queue.addAfter('ns/a', 60_000); // later: ignored
    queue.addAfter('ns/a', 10_000); // earlier: wins
    expect(clock.pendingDelays()).toEqual([10_000]);
    await clock.advance(60_000);
    expect(runs).toEqual([0, 10_000]);
  });

  it('shutDown waits for the in-flight run, drops queued and delayed keys, then ignores adds', async () => {
    const { queue, clock } = setup(1);
    const started: string[] = [];
    const gate = deferred();
    queue.start(async (key) => {
      started.push(key);
      if (key === 'ns/a') await gate.promise;
    });
    queue.add('ns/a');
    queue.add('ns/b');
    queue.addAfter('ns/c', 1000);
    await flush();
    let done = false;
    const stopping = queue.shutDown().then(() => {
      done = true;
    });
    await flush();
    expect(done).toBe(false);
    expect(clock.pending).toBe(0);
    queue.add('ns/d');
    gate.resolve();
    await stopping;
    expect(started).toEqual(['ns/a']);
    expect(queue.length).toBe(0);
  });

  it('shutDownWithDrain runs what is already queued before resolving', async () => {
    const { queue } = setup(1);
    const started: string[] = [];
    queue.start(async (key) => {
      started.push(key);
    });
    queue.add('ns/a');
    queue.add('ns/b');
    await queue.shutDownWithDrain();
    expect(started).toEqual(['ns/a', 'ns/b']);
  });

  it('shutDown of a queue that never started resolves at once', async () => {
    const { queue } = setup(1);
    queue.add('ns/a');
    await queue.shutDown();
    expect(queue.length).toBe(0);
  });

  it('reports depth, queue time and work time to the metrics sink', async () => {
    const { queue, clock, metrics } = setup(1);
    queue.add('ns/a');
    queue.add('ns/b');
    await clock.advance(2000);
    queue.start(async () => {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 1500));
    });
    await clock.advance(3000);
    expect(metrics.queuedSeconds).toEqual([2, 3.5]);
    expect(metrics.workedSeconds).toEqual([1.5, 1.5]);
    expect(metrics.depths.at(-1)).toBe(0);
    expect(Math.max(...metrics.depths)).toBe(2);
  });

  it('rejects bad options and malformed keys with clear errors', () => {
    expect(() => new WorkQueue({ name: 'q', workers: 0 })).toThrow(/workers must be an integer >= 1, got 0/);
    expect(() => new WorkQueue({ name: 'q', backoff: { initialMs: 10, maxMs: 5 } })).toThrow(/maxMs must be >= initialMs/);
    expect(splitKey(keyOf('ns', 'web'))).toEqual({ namespace: 'ns', name: 'web' });
    expect(() => splitKey('noslash')).toThrow(/"namespace\/name"/);
    expect(() => splitKey('a/b/c')).toThrow(/"namespace\/name"/);
  });
});
