// When a create must list the host's replicas before checking --max-replicas-per-host: only when the
// estimate (listed + made since + in flight, which only errs high) reaches the cap, or is old.
import { describe, expect, it } from 'vitest';
import { mustRecount } from '../../../controller/engine/docker-engine.js';

describe('mustRecount', () => {
  const at = 1_000_000;

  it('lists the first time', () => {
    expect(mustRecount(undefined, 500, 0, at)).toBe(true);
  });

  it('trusts a fresh estimate below the cap: 1000 creates under a cap of 5000 list once, not 1000 times', () => {
    let count = { listed: 0, since: 0, at };
    let lists = 1;
    for (let i = 0; i < 1000; i++) {
      if (mustRecount(count, 5000, 0, at + i)) {
        lists++;
        count = { listed: count.listed + count.since, since: 0, at: at + i };
      }
      count = { ...count, since: count.since + 1 };
    }
    expect(lists).toBe(1);
  });

  it('lists again once the estimate with what is in flight reaches the cap (only an exact count refuses)', () => {
    expect(mustRecount({ listed: 495, since: 3, at }, 500, 1, at)).toBe(false);
    expect(mustRecount({ listed: 495, since: 3, at }, 500, 2, at)).toBe(true);
    expect(mustRecount({ listed: 500, since: 0, at }, 500, 0, at)).toBe(true);
  });

  it('lists again after 30 s, so containers made or removed by hand are seen', () => {
    expect(mustRecount({ listed: 1, since: 0, at }, 500, 0, at + 29_999)).toBe(false);
    expect(mustRecount({ listed: 1, since: 0, at }, 500, 0, at + 30_000)).toBe(true);
  });
});
