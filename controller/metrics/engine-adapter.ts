// Turns the restore engine's events into metrics, and polls its disk headroom. The engine knows
// nothing about Prometheus; this adapter is the only place the two meet.

import type { EngineEvent, RestoreEngine } from '../engine/types.js';
import type { CrsMetrics } from './metrics.js';

export interface ObserveEngineOptions {
  /** How often to poll engine.diskHeadroomBytes() (and re-read engine.inFlight). Default 15 s (the usual scrape interval). */
  headroomIntervalMs?: number;
  /**
   * Called when a poll of the headroom fails (the gauge then keeps its last value, and a stale value
   * is preferable to a missing series for the alert). Default: ignore.
   */
  onError?: (error: unknown) => void;
}

export interface EngineObservation {
  /** Unsubscribes and stops polling; resolves once a poll in progress has finished. */
  stop(): Promise<void>;
  /** Polls the headroom now (also done at start and whenever the engine waits for disk). */
  pollHeadroom(): Promise<void>;
}

const DEFAULT_HEADROOM_INTERVAL_MS = 15_000;

/** Applies one engine event to the metrics (pure with respect to everything but `metrics`). */
function recordEngineEvent(metrics: CrsMetrics, node: string, event: EngineEvent): void {
  switch (event.type) {
    case 'restore.started':
      metrics.restoresInFlight(node, event.inFlight);
      return;
    case 'restore.succeeded':
      metrics.restoreFinished(event.owner, { result: 'success' }, event.durationSeconds);
      metrics.restoresInFlight(node, event.inFlight);
      return;
    case 'restore.failed':
      metrics.restoreFinished(event.owner, { result: 'failure', reason: event.reason }, event.durationSeconds);
      metrics.restoresInFlight(node, event.inFlight);
      return;
    case 'hygiene.reclaimed':
      metrics.checkpointCopiesReclaimed(node, event.bytes);
      return;
    case 'hygiene.ignored':
      metrics.hygieneIgnored(node, event.reason);
      return;
    case 'checkpoint.sized':
      metrics.checkpointSize(event.owner, node, event.bytes);
      return;
    case 'bootstrap.succeeded':
      metrics.bootstrapFinished('success', event.durationSeconds);
      metrics.checkpointSize(event.owner, node, event.bytes);
      return;
    case 'bootstrap.failed':
      metrics.bootstrapFinished('failure', event.durationSeconds);
      return;
    // Not restores (cold starts are counted by the reconciler as ready replicas) or no metric of
    // their own: queued restores show in crs_replicas_restoring, removals in crs_replicas_ready.
    case 'restore.queued':
    case 'coldstart.succeeded':
    case 'replica.removed':
    case 'disk.waiting':
    case 'bootstrap.started':
      return;
    default: {
      const unexpected: never = event;
      void unexpected;
    }
  }
}

export function observeEngine(engine: RestoreEngine, metrics: CrsMetrics, node: string, options: ObserveEngineOptions = {}): EngineObservation {
  const intervalMs = options.headroomIntervalMs ?? DEFAULT_HEADROOM_INTERVAL_MS;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
    throw new RangeError(`headroomIntervalMs: must be a positive number of milliseconds, got ${String(intervalMs)}`);
  }
  const onError = options.onError ?? (() => {});

  metrics.concurrencyLimit(node, engine.concurrencyLimit);
  metrics.restoresInFlight(node, engine.inFlight);

  let stopped = false;
  // At most one poll at a time: a slow disk must not pile up statfs calls.
  let polling: Promise<void> | undefined;
  const pollHeadroom = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    polling ??= engine
      .diskHeadroomBytes()
      .then((bytes) => {
        if (!stopped) metrics.diskHeadroom(node, bytes);
      })
      .catch((error: unknown) => onError(error))
      .finally(() => {
        polling = undefined;
      });
    return polling;
  };

  const unsubscribe = engine.onEvent((event) => {
    try {
      recordEngineEvent(metrics, node, event);
    } catch (error) {
      // A bad value from the engine must not break the engine's own event loop.
      onError(error);
    }
    // The engine waits because the disk is short: refresh the gauge now, not at the next tick.
    if (event.type === 'disk.waiting') void pollHeadroom();
  });

  const timer = setInterval(() => {
    // Events keep the in-flight gauge current; this re-reads it in case cold starts (which hold
    // limiter slots but emit no restore events) changed it since.
    metrics.restoresInFlight(node, engine.inFlight);
    void pollHeadroom();
  }, intervalMs);
  timer.unref();
  void pollHeadroom();

  return {
    pollHeadroom,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      unsubscribe();
      await polling;
    },
  };
}
