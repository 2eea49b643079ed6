import { describe, expect, it } from 'vitest';
import { countDeath, countFailure, duringOutage, forgiveBefore, type FailureCounting } from '../../../controller/reconcile/forgiveness.js';
import type { SlotHistory } from '../../../controller/reconcile/planner.js';

const entry = (over: Partial<SlotHistory> = {}): SlotHistory => ({ templateHash: 'h', lastAttempt: 1, failedRestores: 0, coldStartFailed: false, ...over });
const at = (now: number, outage?: FailureCounting['outage']): FailureCounting => ({ now, provenAfterMs: 60_000, outage, outageGraceMs: 5_000 });

describe('forgiveness', () => {
  it('counts a failure with its time; not during an engine outage nor within the grace after it', () => {
    expect(countFailure(entry(), at(1_000))).toMatchObject({ failedRestores: 1, countedAt: [1_000] });
    const outage = { lostAt: 10_000, backAt: 20_000 };
    expect(duringOutage(at(15_000, outage))).toBe(true);
    expect(countFailure(entry(), at(15_000, outage)).failedRestores).toBe(0);
    expect(countFailure(entry(), at(24_000, outage)).failedRestores).toBe(0);
    expect(countFailure(entry(), at(26_000, outage)).failedRestores).toBe(1);
    expect(countFailure(entry(), at(99_000, { lostAt: 10_000, backAt: undefined })).failedRestores).toBe(0);
  });

  it('a death: young counts, proven (ran provenAfterMs) starts the slot over, lived across an outage is forgiven', () => {
    const twice = entry({ failedRestores: 2, countedAt: [1, 2] });
    expect(countDeath(twice, 100_000, at(130_000)).failedRestores).toBe(3);
    expect(countDeath(twice, 100_000, at(160_000))).toMatchObject({ failedRestores: 0, countedAt: [] });
    expect(countDeath(twice, 100_000, at(130_000, { lostAt: 120_000, backAt: 125_000 })).failedRestores).toBe(2);
    // Without a counting policy (callers that predate it) every death counts.
    expect(countDeath(twice, 100_000, undefined).failedRestores).toBe(3);
  });

  it('an outage takes back the failures counted within the lookback before it, and only those', () => {
    const history = new Map([
      ['0', entry({ failedRestores: 3, countedAt: [10_000, 95_000, 99_000] })],
      ['1', entry({ failedRestores: 1, countedAt: [50_000] })],
    ]);
    const after = forgiveBefore(history, 100_000, 30_000);
    expect(after.get('0')).toMatchObject({ failedRestores: 1, countedAt: [10_000] });
    expect(after.get('1')).toBe(history.get('1'));
  });
});
