// Time as the engine sees it: injectable so unit tests of timing logic need no real waiting.

export interface Clock {
  now(): Date;
  /** Resolves after ms; rejects with the signal's reason when aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/**
 * A signal that fires when `parent` fires or after `ms` on `clock`, whichever comes first; on the
 * deadline it aborts with `onTimeout()` as the reason. Call dispose() when done to drop the timer.
 */
export function withDeadline(clock: Clock, ms: number, onTimeout: () => Error, parent?: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const timer = new AbortController();
  const onParent = (): void => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener('abort', onParent, { once: true });
  clock.sleep(ms, timer.signal).then(
    () => controller.abort(onTimeout()),
    () => undefined, // disposed before the deadline
  );
  return {
    signal: controller.signal,
    dispose: () => {
      timer.abort();
      parent?.removeEventListener('abort', onParent);
    },
  };
}
