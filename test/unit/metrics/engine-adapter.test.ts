import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EngineEvent, ReplicaOwner, RestoreEngine } from '../../../controller/engine/types.js';
import { observeEngine } from '../../../controller/metrics/engine-adapter.js';
import { createMetrics } from '../../../controller/metrics/metrics.js';
import { valueOf } from './helpers.js';

const owner: ReplicaOwner = { uid: 'u-1', namespace: 'shop', name: 'web' };
const at = new Date(0);

/** The parts of RestoreEngine the adapter uses; everything else fails loudly if touched. */
class FakeEngine {
  listeners = new Set<(e: EngineEvent) => void>();
  inFlight = 0;
  concurrencyLimit = 10;
  headroomCalls = 0;
  headroom: () => Promise<number> = async () => 40e9;
  onEvent(listener: (e: EngineEvent) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(event: EngineEvent) {
    for (const l of this.listeners) l(event);
  }
  diskHeadroomBytes() {
    this.headroomCalls++;
    return this.headroom();
  }
  asEngine(): RestoreEngine {
    return new Proxy(this, {
      get(target, prop, receiver) {
        if (prop in target) return Reflect.get(target, prop, receiver) as unknown;
        throw new Error(`the adapter must not use engine.${String(prop)}`);
      },
    }) as unknown as RestoreEngine;
  }
}

describe('observeEngine', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('turns a sequence of engine events into restores, durations, in-flight and reclaimed bytes', async () => {
    const engine = new FakeEngine();
    engine.inFlight = 0;
    const metrics = createMetrics({ version: 'x', defaultMetrics: false });
    const observation = observeEngine(engine.asEngine(), metrics, 'n1');
    const r = metrics.registry;

    expect(await valueOf(r, 'crs_restore_concurrency_limit', { node: 'n1' })).toBe(10);
    expect(await valueOf(r, 'crs_restores_in_flight', { node: 'n1' })).toBe(0);

    engine.emit({ type: 'restore.queued', owner, replicaId: 'a', attempt: 1, at });
    engine.emit({ type: 'restore.started', owner, replicaId: 'a', attempt: 1, at, inFlight: 1 });
    engine.emit({ type: 'restore.started', owner, replicaId: 'b', attempt: 1, at, inFlight: 2 });
    engine.emit({ type: 'restore.started', owner, replicaId: 'c', attempt: 1, at, inFlight: 3 });
    expect(await valueOf(r, 'crs_restores_in_flight', { node: 'n1' })).toBe(3);

    engine.emit({ type: 'restore.succeeded', owner, replicaId: 'a', attempt: 1, containerId: 'c1', at, durationSeconds: 2, inFlight: 2 });
    engine.emit({
      type: 'restore.failed',
      owner,
      replicaId: 'b',
      attempt: 1,
      reason: 'RestoreRace',
      transient: true,
      message: 'already exists',
      at,
      durationSeconds: 1,
      inFlight: 1,
    });
    engine.emit({ type: 'restore.started', owner, replicaId: 'b', attempt: 2, at, inFlight: 2 });
    engine.emit({ type: 'restore.succeeded', owner, replicaId: 'b', attempt: 2, containerId: 'c2', at, durationSeconds: 3, inFlight: 1 });
    engine.emit({ type: 'restore.succeeded', owner, replicaId: 'c', attempt: 1, containerId: 'c3', at, durationSeconds: 4, inFlight: 0 });
    engine.emit({ type: 'hygiene.reclaimed', bytes: 200e6, paths: 1, at });
    engine.emit({ type: 'hygiene.reclaimed', bytes: 400e6, paths: 2, at });
    engine.emit({ type: 'checkpoint.sized', owner, bytes: 300e6, at });
    engine.emit({ type: 'checkpoint.sized', owner, bytes: 209_715_200, at });
    engine.emit({ type: 'coldstart.succeeded', owner, replicaId: 'd', containerId: 'c4', at });
    engine.emit({ type: 'replica.removed', owner, containerId: 'c1', at });
    engine.emit({ type: 'hygiene.ignored', reason: 'marker_not_regular_file', path: '/tmp/ctrd-checkpoint1/x', at });
    engine.emit({ type: 'hygiene.ignored', reason: 'marker_not_regular_file', path: '/tmp/ctrd-checkpoint2/x', at });

    const labels = { namespace: 'shop', name: 'web' };
    expect(await valueOf(r, 'crs_restores_total', { ...labels, result: 'success', reason: 'none' })).toBe(3);
    expect(await valueOf(r, 'crs_restores_total', { ...labels, result: 'failure', reason: 'RestoreRace' })).toBe(1);
    expect(await valueOf(r, 'crs_restore_duration_seconds', { __name__: 'crs_restore_duration_seconds_count' })).toBe(4);
    expect(await valueOf(r, 'crs_restore_duration_seconds', { __name__: 'crs_restore_duration_seconds_sum' })).toBe(10);
    expect(await valueOf(r, 'crs_restores_in_flight', { node: 'n1' })).toBe(0);
    expect(await valueOf(r, 'crs_checkpoint_copies_reclaimed_bytes_total', { node: 'n1' })).toBe(600e6);
    expect(await valueOf(r, 'crs_hygiene_ignored_total', { node: 'n1', reason: 'marker_not_regular_file' })).toBe(2);
    // The latest size read wins (a re-taken checkpoint may be larger or smaller).
    expect(await valueOf(r, 'crs_checkpoint_size_bytes', { ...labels, node: 'n1' })).toBe(209_715_200);
    await observation.stop();
  });

  it('polls the disk headroom at start and at every interval, and stops polling on stop()', async () => {
    const engine = new FakeEngine();
    let free = 50e9;
    engine.headroom = async () => free;
    const metrics = createMetrics({ version: 'x', defaultMetrics: false });
    const observation = observeEngine(engine.asEngine(), metrics, 'n1', { headroomIntervalMs: 1000 });
    await vi.advanceTimersByTimeAsync(0);
    expect(engine.headroomCalls).toBe(1);
    expect(await valueOf(metrics.registry, 'crs_disk_headroom_bytes', { node: 'n1' })).toBe(50e9);

    free = 20e9;
    await vi.advanceTimersByTimeAsync(3000);
    expect(engine.headroomCalls).toBe(4);
    expect(await valueOf(metrics.registry, 'crs_disk_headroom_bytes', { node: 'n1' })).toBe(20e9);

    await observation.stop();
    engine.emit({ type: 'hygiene.reclaimed', bytes: 1, paths: 1, at });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(engine.headroomCalls).toBe(4);
    expect(engine.listeners.size).toBe(0);
    expect(await valueOf(metrics.registry, 'crs_checkpoint_copies_reclaimed_bytes_total', { node: 'n1' })).toBeUndefined();
  });

  it('re-reads engine.inFlight at every interval, so slots held by cold starts show too', async () => {
    const engine = new FakeEngine();
    const metrics = createMetrics({ version: 'x', defaultMetrics: false });
    const observation = observeEngine(engine.asEngine(), metrics, 'n1', { headroomIntervalMs: 1000 });
    engine.inFlight = 6;
    await vi.advanceTimersByTimeAsync(1000);
    expect(await valueOf(metrics.registry, 'crs_restores_in_flight', { node: 'n1' })).toBe(6);
    await observation.stop();
  });

  it('never runs two headroom polls at once on a slow disk', async () => {
    const engine = new FakeEngine();
    let release!: (bytes: number) => void;
    engine.headroom = () => new Promise<number>((resolve) => (release = resolve));
    const metrics = createMetrics({ version: 'x', defaultMetrics: false });
    const observation = observeEngine(engine.asEngine(), metrics, 'n1', { headroomIntervalMs: 1000 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(engine.headroomCalls).toBe(1);
    release(7e9);
    await vi.advanceTimersByTimeAsync(0);
    expect(await valueOf(metrics.registry, 'crs_disk_headroom_bytes', { node: 'n1' })).toBe(7e9);
    await vi.advanceTimersByTimeAsync(1000);
    expect(engine.headroomCalls).toBe(2);
    release(6e9);
    await observation.stop();
  });

  it('re-polls at once when the engine waits for disk', async () => {
    const engine = new FakeEngine();
    const metrics = createMetrics({ version: 'x', defaultMetrics: false });
    const observation = observeEngine(engine.asEngine(), metrics, 'n1', { headroomIntervalMs: 60_000 });
    await vi.advanceTimersByTimeAsync(0);
    expect(engine.headroomCalls).toBe(1);
    engine.headroom = async () => 1e9;
    engine.emit({ type: 'disk.waiting', neededBytes: 6e9, availableBytes: 1e9, path: '/var/lib/crs-docker', at });
    await vi.advanceTimersByTimeAsync(0);
    expect(engine.headroomCalls).toBe(2);
    expect(await valueOf(metrics.registry, 'crs_disk_headroom_bytes', { node: 'n1' })).toBe(1e9);
    await observation.stop();
  });

  it('a failed poll is reported and keeps the last value; a bad event value does not break the engine', async () => {
    const engine = new FakeEngine();
    const errors: unknown[] = [];
    const metrics = createMetrics({ version: 'x', defaultMetrics: false });
    const observation = observeEngine(engine.asEngine(), metrics, 'n1', { headroomIntervalMs: 1000, onError: (e) => errors.push(e) });
    await vi.advanceTimersByTimeAsync(0);
    engine.headroom = async () => {
      throw new Error('statfs: EIO');
    };
    await vi.advanceTimersByTimeAsync(1000);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/EIO/);
    expect(await valueOf(metrics.registry, 'crs_disk_headroom_bytes', { node: 'n1' })).toBe(40e9);

    expect(() => engine.emit({ type: 'hygiene.reclaimed', bytes: -5, paths: 1, at })).not.toThrow();
    expect(errors).toHaveLength(2);
    expect((errors[1] as Error & { code: string }).code).toBe('InvalidValue');
    await observation.stop();
  });

  it('rejects a non-positive poll interval with a clear error', () => {
    const metrics = createMetrics({ version: 'x', defaultMetrics: false });
    expect(() => observeEngine(new FakeEngine().asEngine(), metrics, 'n1', { headroomIntervalMs: 0 })).toThrow(/headroomIntervalMs: must be a positive number/);
  });
});
