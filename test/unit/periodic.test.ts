// Housekeeping never overlaps itself, on vitest's simulated timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runPeriodically } from '../../controller/periodic.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('runPeriodically', () => {
  it('starts the next run an interval after the previous one ENDED, never while it runs', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const release: (() => void)[] = [];
    const p = runPeriodically(
      async () => {
        runs++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise<void>((r) => release.push(r));
        running--;
      },
      60_000,
      () => undefined,
    );
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runs).toBe(1);
    // The run hangs for ten intervals: a setInterval would have started ten more.
    await vi.advanceTimersByTimeAsync(600_000);
    expect(runs).toBe(1);
    release.shift()?.();
    await vi.advanceTimersByTimeAsync(59_999);
    expect(runs).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toBe(2);
    expect(maxRunning).toBe(1);
    const stopped = p.stop();
    release.shift()?.();
    await stopped;
    await vi.advanceTimersByTimeAsync(600_000);
    expect(runs).toBe(2);
  });

  it('passes failures to onError and goes on; stop() aborts the run in progress', async () => {
    const errors: unknown[] = [];
    let signal: AbortSignal | undefined;
    let calls = 0;
    const p = runPeriodically(
      async (s) => {
        calls++;
        signal = s;
        if (calls === 1) throw new Error('boom');
        await new Promise<void>((resolve) => s.addEventListener('abort', () => resolve()));
      },
      1000,
      (err) => errors.push(err),
    );
    await vi.advanceTimersByTimeAsync(2000);
    expect(errors).toHaveLength(1);
    expect(calls).toBe(2);
    await p.stop();
    expect(signal?.aborted).toBe(true);
    expect(errors).toHaveLength(1);
  });

  it('soon(): runs within the given delay instead of the interval, once for many calls; during a run, that long after it', async () => {
    let runs = 0;
    const release: (() => void)[] = [];
    const p = runPeriodically(
      async () => {
        runs++;
        await new Promise<void>((r) => release.push(r));
      },
      600_000,
      () => undefined,
    );
    p.soon(60_000);
    await vi.advanceTimersByTimeAsync(30_000);
    p.soon(60_000); // a later nudge does not push the run back
    p.soon(120_000); // nor does a longer one
    await vi.advanceTimersByTimeAsync(30_000);
    expect(runs).toBe(1);
    p.soon(60_000); // during the run
    release.shift()?.();
    await vi.advanceTimersByTimeAsync(59_999);
    expect(runs).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toBe(2);
    release.shift()?.();
    // Nothing asked since: back to the long interval.
    await vi.advanceTimersByTimeAsync(599_999);
    expect(runs).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toBe(3);
    const stopped = p.stop();
    release.shift()?.();
    await stopped;
  });

  it('refuses a bad interval', () => {
    expect(() =>
      runPeriodically(
        async () => undefined,
        0,
        () => undefined,
      ),
    ).toThrow(/intervalMs/);
  });
});
