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
        reject(abortReason(signal));
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(abortReason(signal));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/**
 * The children of one parent signal share ONE abort listener on it. A long-lived parent (the
 * engine's closing signal, a reconcile actor's signal) serves dozens of Docker calls at once: a
 * listener each trips MaxListenersExceededWarning, and AbortSignal.any() is no way out on Node 20,
 * where a composite signal with a listener stays reachable for as long as its source lives (measured:
 * about 2 KB kept per composite, for the agent's whole life).
 */
interface Fanout {
  children: Set<AbortController>;
  onAbort: () => void;
}
const fanouts = new WeakMap<AbortSignal, Fanout>();

/**
 * A controller aborted (with the parent's reason) when any of `parents` aborts. Call unlink() when
 * done: the parents then hold nothing of it, and a parent's listener goes when its last child does.
 */
export function linkedController(parents: readonly (AbortSignal | undefined)[]): { controller: AbortController; unlink: () => void } {
  const controller = new AbortController();
  const linked: AbortSignal[] = [];
  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      controller.abort(parent.reason);
      break;
    }
    let fanout = fanouts.get(parent);
    if (!fanout) {
      const children = new Set<AbortController>();
      const created: Fanout = {
        children,
        onAbort: () => {
          fanouts.delete(parent);
          for (const child of [...children]) child.abort(parent.reason);
        },
      };
      parent.addEventListener('abort', created.onAbort, { once: true });
      fanouts.set(parent, created);
      fanout = created;
    }
    fanout.children.add(controller);
    linked.push(parent);
  }
  const unlink = (): void => {
    for (const parent of linked.splice(0)) {
      const fanout = fanouts.get(parent);
      if (!fanout) continue;
      fanout.children.delete(controller);
      if (fanout.children.size === 0) {
        parent.removeEventListener('abort', fanout.onAbort);
        fanouts.delete(parent);
      }
    }
  };
  return { controller, unlink };
}

/**
 * A signal that fires when `parent` fires or after `ms` on `clock`, whichever comes first; on the
 * deadline it aborts with `onTimeout()` as the reason. Call dispose() when done to drop the timer
 * and the link to the parent.
 */
export function withDeadline(clock: Clock, ms: number, onTimeout: () => Error, parent?: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const { controller, unlink } = linkedController([parent]);
  const timer = new AbortController();
  clock.sleep(ms, timer.signal).then(
    () => controller.abort(onTimeout()),
    () => undefined, // disposed before the deadline
  );
  return {
    signal: controller.signal,
    dispose: () => {
      timer.abort();
      unlink();
    },
  };
}

/** The signal's reason as an Error (AbortSignal.reason is typed `any`; abort() without one gives a DOMException). */
function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error(reason === undefined ? 'aborted' : String(reason));
}
