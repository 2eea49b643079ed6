import { describe, expect, it } from 'vitest';
import { EngineError } from '../../../controller/engine/errors.js';
import { FairLimiter } from '../../../controller/engine/limiter.js';

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('FairLimiter', () => {
  it('never lets more than the limit hold a slot, and lets everyone through eventually', async () => {
    const limiter = new FairLimiter(3);
    let holding = 0;
    let max = 0;
    const work = async (key: string): Promise<void> => {
      const release = await limiter.acquire(key);
      holding++;
      max = Math.max(max, holding);
      await flush();
      holding--;
      release();
    };
    await Promise.all(Array.from({ length: 40 }, (_, i) => work(`owner-${i % 4}`)));
    expect(max).toBe(3);
    expect(limiter.inFlight).toBe(0);
    expect(limiter.waiting).toBe(0);
  });

  it('serves waiting owners round-robin: one owner with many requests cannot starve another', async () => {
    const limiter = new FairLimiter(1);
    const first = await limiter.acquire('big');
    const order: string[] = [];
    // Each waiter records its turn and gives the slot back right away.
    const take = (key: string): Promise<void> =>
      limiter.acquire(key).then(async (release) => {
        order.push(key);
        await flush();
        release();
      });
    const waiters = [...Array.from({ length: 5 }, () => take('big')), take('small'), take('other')];
    first();
    await Promise.all(waiters);
    // "big" queued first, so it goes first; then the others get their turn before big's second.
    expect(order.slice(0, 3)).toEqual(['big', 'small', 'other']);
    expect(order).toHaveLength(7);
  });

  it('an aborted waiter leaves the queue with a typed error and takes no slot', async () => {
    const limiter = new FairLimiter(1);
    const held = await limiter.acquire('a');
    const controller = new AbortController();
    const waiting = limiter.acquire('b', controller.signal);
    controller.abort(new Error('reconcile cancelled'));
    await expect(waiting).rejects.toMatchObject({ code: 'Aborted' });
    expect(limiter.waiting).toBe(0);
    held();
    expect(limiter.inFlight).toBe(0);
    const again = await limiter.acquire('c');
    expect(limiter.inFlight).toBe(1);
    again();
  });

  it('keeps a typed abort reason (a timeout stays a timeout)', async () => {
    const limiter = new FairLimiter(1);
    const held = await limiter.acquire('a');
    const reason = new EngineError('RestoreTimeout', 'too slow');
    await expect(limiter.acquire('b', AbortSignal.abort(reason))).rejects.toBe(reason);
    held();
  });

  it('releasing twice frees one slot only', async () => {
    const limiter = new FairLimiter(1);
    const release = await limiter.acquire('a');
    const next = limiter.acquire('b');
    release();
    release();
    await next;
    expect(limiter.inFlight).toBe(1);
  });

  it('refuses a limit below 1', () => {
    expect(() => new FairLimiter(0)).toThrow(/concurrencyLimit/);
  });
});

describe('FairLimiter: the bound on waiting', () => {
  it('a waiter gives up with RestoreTimeout after maxWaitMs and leaves the queue; the slot goes to the next', async () => {
    const limiter = new FairLimiter(1);
    const release = await limiter.acquire('a');
    const started = Date.now();
    const late = limiter.acquire('b', undefined, 50);
    const patient = limiter.acquire('c');
    expect(limiter.waiting).toBe(2);
    await expect(late).rejects.toMatchObject({ code: 'RestoreTimeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(limiter.waiting).toBe(1);
    release();
    (await patient)();
    expect(limiter.inFlight).toBe(0);
  });

  it('a waiter granted in time keeps its slot after maxWaitMs passes', async () => {
    const limiter = new FairLimiter(1);
    const release = await limiter.acquire('a');
    const waiting = limiter.acquire('b', undefined, 30);
    release();
    const second = await waiting;
    await new Promise((r) => setTimeout(r, 60));
    expect(limiter.inFlight).toBe(1);
    second();
    expect(limiter.inFlight).toBe(0);
  });
});
