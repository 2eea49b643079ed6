// Periodic work that never overlaps itself: the next run is scheduled only once the previous one
// has finished, so a slow or hung dependency delays the housekeeping instead of piling up runs
// (a setInterval with an async body starts a new run every tick however long the last one takes).

export interface Periodic {
  /** Cancels the run in progress (its signal aborts) and waits for it to end. */
  stop(): Promise<void>;
  /**
   * Something happened that the task should see: run within `ms` (sooner than the interval), once
   * however often it is called meanwhile. During a run: the next run comes `ms` after it ends.
   */
  soon(ms: number): void;
}

/**
 * Runs `task` every `intervalMs`, measured from the end of the previous run, first after one
 * interval, and sooner when asked (soon()): a long interval for the idle case plus a nudge from
 * the events that make work for it keeps an idle agent quiet without delaying the work. The task gets a signal that aborts on stop(); a failure is passed to onError and the
 * schedule goes on.
 */
export function runPeriodically(task: (signal: AbortSignal) => Promise<void>, intervalMs: number, onError: (err: unknown) => void): Periodic {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`intervalMs: must be > 0, got ${String(intervalMs)}`);
  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** When the scheduled run is due (ms since the epoch), while one is scheduled. */
  let dueAt = Infinity;
  /** A soon() during a run: the delay before the next one. */
  let soonAfterRun: number | undefined;

  const schedule = (delayMs: number): void => {
    if (stopping.signal.aborted) return;
    if (timer) clearTimeout(timer);
    dueAt = Date.now() + delayMs;
    timer = setTimeout(() => {
      timer = undefined;
      dueAt = Infinity;
      running = task(stopping.signal)
        .catch((err: unknown) => {
          if (!stopping.signal.aborted) onError(err);
        })
        .finally(() => {
          running = undefined;
          const next = soonAfterRun ?? intervalMs;
          soonAfterRun = undefined;
          schedule(next);
        });
    }, delayMs);
    timer.unref();
  };
  schedule(intervalMs);

  return {
    async stop() {
      stopping.abort(new Error('stopping'));
      if (timer) clearTimeout(timer);
      await running;
    },
    soon(ms) {
      if (running) soonAfterRun = Math.min(soonAfterRun ?? ms, ms);
      else if (Date.now() + ms < dueAt) schedule(ms);
    },
  };
}
