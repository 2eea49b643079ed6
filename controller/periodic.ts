// Periodic work that never overlaps itself: the next run is scheduled only once the previous one
// has finished, so a slow or hung dependency delays the housekeeping instead of piling up runs
// (a setInterval with an async body starts a new run every tick however long the last one takes).

export interface Periodic {
  /** Cancels the run in progress (its signal aborts) and waits for it to end. */
  stop(): Promise<void>;
}

/**
 * Runs `task` every `intervalMs`, measured from the end of the previous run, first after one
 * interval. The task gets a signal that aborts on stop(); a failure is passed to onError and the
 * schedule goes on.
 */
export function runPeriodically(task: (signal: AbortSignal) => Promise<void>, intervalMs: number, onError: (err: unknown) => void): Periodic {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`intervalMs: must be > 0, got ${String(intervalMs)}`);
  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const schedule = (): void => {
    if (stopping.signal.aborted) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = task(stopping.signal)
        .catch((err: unknown) => {
          if (!stopping.signal.aborted) onError(err);
        })
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, intervalMs);
    timer.unref();
  };
  schedule();

  return {
    async stop() {
      stopping.abort(new Error('stopping'));
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
