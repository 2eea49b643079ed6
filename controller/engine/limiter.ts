// Per-host semaphore: never more than `limit` holders at once, and fair between keys (owners):
// a freed slot goes to the next key in round-robin order, so one resource asking for 45 restores
// cannot starve another asking for 1.
//
// Waiting has its own bound (maxWaitMs): a restore's timeout counts only from when it holds a slot,
// so without one a restore queued behind a stuck host would wait forever. A waiter leaves the queue
// at once when its signal fires (a deletion or scale-down cancelling restores not yet started).

import { EngineError } from './errors.js';

interface Waiter {
  grant: (release: () => void) => void;
  reject: (err: Error) => void;
}

export class FairLimiter {
  readonly limit: number;
  private held = 0;
  /** Waiting keys in round-robin order; a key appears once while it has waiters. */
  private readonly order: string[] = [];
  private readonly queues = new Map<string, Waiter[]>();

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new EngineError('InvalidSpec', `concurrencyLimit: ${limit} must be a whole number >= 1`);
    this.limit = limit;
  }

  get inFlight(): number {
    return this.held;
  }

  get waiting(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /**
   * Resolves with a release function once a slot is free; rejects with Aborted when the signal fires
   * first, and with RestoreTimeout after maxWaitMs in the queue.
   */
  acquire(key: string, signal?: AbortSignal, maxWaitMs?: number): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    if (this.held < this.limit && this.order.length === 0) {
      this.held++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const leave = (): void => {
        signal?.removeEventListener('abort', onAbort);
        if (timer) clearTimeout(timer);
      };
      const waiter: Waiter = {
        grant: (release) => {
          leave();
          resolve(release);
        },
        reject,
      };
      const onAbort = (): void => {
        leave();
        this.dequeue(key, waiter);
        reject(abortedError(signal));
      };
      const timer =
        maxWaitMs === undefined
          ? undefined
          : setTimeout(() => {
              leave();
              this.dequeue(key, waiter);
              reject(
                new EngineError(
                  'RestoreTimeout',
                  `waited ${maxWaitMs} ms for one of this host's ${this.limit} restore slots (all busy, ${this.waiting} more waiting); nothing was started`,
                ),
              );
            }, maxWaitMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      let queue = this.queues.get(key);
      if (!queue) {
        queue = [];
        this.queues.set(key, queue);
        this.order.push(key);
      }
      queue.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return; // releasing twice must not free someone else's slot
      released = true;
      this.held--;
      this.grantNext();
    };
  }

  private grantNext(): void {
    while (this.held < this.limit && this.order.length > 0) {
      const key = this.order.shift() as string;
      const queue = this.queues.get(key) ?? [];
      const waiter = queue.shift();
      if (queue.length > 0) this.order.push(key);
      else this.queues.delete(key);
      if (!waiter) continue;
      this.held++;
      waiter.grant(this.releaser());
    }
  }

  private dequeue(key: string, waiter: Waiter): void {
    const queue = this.queues.get(key);
    if (!queue) return;
    const i = queue.indexOf(waiter);
    if (i >= 0) queue.splice(i, 1);
    if (queue.length === 0) {
      this.queues.delete(key);
      const k = this.order.indexOf(key);
      if (k >= 0) this.order.splice(k, 1);
    }
  }
}

export function abortedError(signal?: AbortSignal): EngineError {
  const reason: unknown = signal?.reason;
  if (reason instanceof EngineError) return reason;
  const detail = reason instanceof Error ? reason.message : reason === undefined ? 'aborted' : typeof reason === 'string' ? reason : JSON.stringify(reason);
  return new EngineError('Aborted', `the operation was cancelled before it finished: ${detail}`);
}
