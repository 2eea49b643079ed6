// A rate-limited work queue keyed by "namespace/name", with the guarantees of client-go's:
//  - one key is never processed by two workers at once; a key added while it is processed is run
//    once more after the current run ends;
//  - repeated adds of a waiting key merge into one item;
//  - a failed run re-queues the key after a per-key exponential backoff (capped), and a successful
//    run forgets the key's failures;
//  - addAfter(key, ms) for requeues the handler asks for.
// Time comes from an injected Clock, so unit tests drive it without sleeping.

import { backoffDelay, validateBackoff, type BackoffPolicy } from '../backoff.js';
import { realClock, type Clock, type TimerHandle } from './clock.js';
import { noopLogger, type Logger } from './logger.js';
import { noopWorkQueueMetrics, type WorkQueueMetricsSink } from './workqueue-metrics.js';

/** What a handler may ask for after a successful run. */
export interface WorkResult {
  /** Run the key again after this many milliseconds (e.g. a backoff the reconciler chose). */
  requeueAfterMs?: number;
}

export type WorkHandler = (key: string) => Promise<WorkResult | void>;

export interface WorkQueueOptions {
  /** The `name` label on the queue's metrics. */
  name: string;
  /** Workers that run keys in parallel (each key still runs alone). Default 2. */
  workers?: number;
  /** Per-key backoff after failures. Default 500 ms doubling to 5 min. */
  backoff?: BackoffPolicy;
  clock?: Clock;
  metrics?: WorkQueueMetricsSink;
  logger?: Logger;
}

const DEFAULT_QUEUE_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 5 * 60_000, factor: 2 };

class WorkQueueShutDownError extends Error {
  readonly code = 'QueueShutDown';
  constructor(name: string) {
    super(`work queue ${name} is shut down; it accepts no new work`);
  }
}

export class WorkQueue {
  readonly name: string;
  private readonly workers: number;
  private readonly backoff: BackoffPolicy;
  private readonly clock: Clock;
  private readonly metrics: WorkQueueMetricsSink;
  private readonly logger: Logger;

  /** Keys waiting for a worker, in order. */
  private readonly queue: string[] = [];
  /** Keys that need a run: waiting in `queue`, or added again while processing. Value: first add time. */
  private readonly dirty = new Map<string, number>();
  /** Keys a worker runs right now. */
  private readonly processing = new Set<string>();
  /** Delayed adds: the earliest due time per key wins. */
  private readonly delayed = new Map<string, { due: number; timer: TimerHandle }>();
  /** Consecutive failures per key, for backoff. */
  private readonly failures = new Map<string, number>();

  private handler: WorkHandler | undefined;
  private shuttingDown = false;
  private draining = false;
  private idleWaiters: Array<() => void> = [];

  constructor(options: WorkQueueOptions) {
    const workers = options.workers ?? 2;
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(`work queue ${options.name}: workers must be an integer >= 1, got ${workers}`);
    }
    this.name = options.name;
    this.workers = workers;
    this.backoff = options.backoff ?? DEFAULT_QUEUE_BACKOFF;
    validateBackoff(this.backoff, `work queue ${options.name}: backoff`);
    this.clock = options.clock ?? realClock;
    this.metrics = options.metrics ?? noopWorkQueueMetrics;
    this.logger = options.logger ?? noopLogger;
  }

  /** Starts the workers. Keys added before start wait for it. */
  start(handler: WorkHandler): void {
    if (this.handler) throw new Error(`work queue ${this.name} is already started`);
    if (this.shuttingDown) throw new WorkQueueShutDownError(this.name);
    this.handler = handler;
    this.pump();
  }

  /** Queues a key now. Merges with a waiting copy; re-runs once after an in-flight run. */
  add(key: string): void {
    if (this.shuttingDown) return;
    this.metrics.added(this.name);
    if (this.dirty.has(key)) return;
    this.dirty.set(key, this.clock.now());
    if (this.processing.has(key)) return; // done() re-queues it
    this.queue.push(key);
    this.metrics.depth(this.name, this.queue.length);
    this.pump();
  }

  /** Queues a key after `ms`; if the key is already waiting to be added later, the earlier time wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const due = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.due <= due) return;
    if (existing) this.clock.clearTimeout(existing.timer);
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { due, timer });
  }

  /** Queues a key after its backoff, one step longer each consecutive failure. */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    this.metrics.retried(this.name);
    this.addAfter(key, backoffDelay(this.backoff, failures));
  }

  /** Clears a key's failure count (its next failure starts at the initial backoff again). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Consecutive failures recorded for a key. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Keys waiting for a worker now (not counting delayed ones). */
  get length(): number {
    return this.queue.length;
  }

  /** Keys being processed now. */
  get inFlight(): number {
    return this.processing.size;
  }

  /** Keys the queue holds in any form: waiting, being processed, or due later (for /healthz). */
  get pending(): number {
    return this.queue.length + this.processing.size + this.delayed.size;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Stops accepting work, drops delayed adds and keys not yet started, and resolves once every
   * in-flight run has finished. Dropped keys are not lost work: a restarted controller lists
   * everything again.
   */
  async shutDown(): Promise<void> {
    this.beginShutDown(false);
    await this.whenIdle();
  }

  /** Like shutDown, but runs every key already queued (not the delayed ones) before resolving. */
  async shutDownWithDrain(): Promise<void> {
    this.beginShutDown(true);
    await this.whenIdle();
  }

  private beginShutDown(drain: boolean): void {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      this.draining = drain;
      for (const { timer } of this.delayed.values()) this.clock.clearTimeout(timer);
      this.delayed.clear();
    }
    if (!this.draining || !this.handler) {
      for (const key of this.queue) this.dirty.delete(key);
      this.queue.length = 0;
      this.metrics.depth(this.name, 0);
    }
    this.pump();
  }

  private whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.processing.size === 0 && (this.queue.length === 0 || !this.handler);
  }

  /** Hands waiting keys to free workers. Event-driven: called on add and when a run ends. */
  private pump(): void {
    const handler = this.handler;
    if (handler) {
      while (this.processing.size < this.workers && this.queue.length > 0) {
        const key = this.queue.shift() as string;
        const addedAt = this.dirty.get(key) ?? this.clock.now();
        this.dirty.delete(key);
        this.processing.add(key);
        this.metrics.depth(this.name, this.queue.length);
        this.metrics.queued(this.name, Math.max(0, this.clock.now() - addedAt) / 1000);
        void this.run(handler, key);
      }
    }
    if (this.shuttingDown && this.isIdle()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private async run(handler: WorkHandler, key: string): Promise<void> {
    const started = this.clock.now();
    let result: WorkResult | void = undefined;
    let failed = false;
    try {
      result = await handler(key);
    } catch (err) {
      failed = true;
      this.logger.warn('reconcile failed; retrying with backoff', {
        queue: this.name,
        key,
        failures: (this.failures.get(key) ?? 0) + 1,
        error: err instanceof Error ? err.message : String(err),
        code: (err as { code?: unknown } | null)?.code,
      });
    }
    this.metrics.worked(this.name, Math.max(0, this.clock.now() - started) / 1000);
    this.processing.delete(key);
    if (failed) {
      this.addRateLimited(key);
    } else {
      this.forget(key);
      const after = result?.requeueAfterMs;
      if (after !== undefined && Number.isFinite(after) && after >= 0) this.addAfter(key, after);
    }
    // Added while it ran: run it once more now.
    if (this.dirty.has(key)) {
      if (this.shuttingDown && !this.draining) {
        this.dirty.delete(key);
      } else {
        this.queue.push(key);
        this.metrics.depth(this.name, this.queue.length);
      }
    }
    this.pump();
  }
}
