import { describe, expect, it } from 'vitest';
import { conditionStatus, findCondition, isFalse, isTrue, kubeTime, removeCondition, setCondition } from '../../../controller/api/conditions.js';
import type { Condition } from '../../../controller/api/types.js';

const t0 = new Date('2026-01-02T03:04:05.678Z');
const t1 = new Date('2026-01-02T03:09:00.000Z');

const ready: Condition = {
  type: 'Ready',
  status: 'False',
  reason: 'Restoring',
  message: '3 of 45 ready',
  lastTransitionTime: '2026-01-01T00:00:00Z',
  observedGeneration: 1,
};

describe('setCondition', () => {
  it('adds a new condition stamped with now, in whole seconds', () => {
    const next = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'AllReady', message: 'ok' }, t0);
    expect(next).toEqual([{ type: 'Ready', status: 'True', reason: 'AllReady', message: 'ok', lastTransitionTime: '2026-01-02T03:04:05Z' }]);
  });

  it('keeps lastTransitionTime when status does not change, but takes the new reason and message', () => {
    const next = setCondition([ready], { type: 'Ready', status: 'False', reason: 'Restoring', message: '30 of 45 ready', observedGeneration: 2 }, t1);
    expect(next).toEqual([{ ...ready, message: '30 of 45 ready', observedGeneration: 2 }]);
  });

  it('moves lastTransitionTime when status changes', () => {
    const next = setCondition([ready], { type: 'Ready', status: 'True', reason: 'AllReady', message: '45 of 45' }, t1);
    expect(next).toEqual([{ type: 'Ready', status: 'True', reason: 'AllReady', message: '45 of 45', lastTransitionTime: '2026-01-02T03:09:00Z' }]);
  });

  it('returns the very same array when nothing changes, so callers can skip the status write', () => {
    const list = [ready];
    const { lastTransitionTime: _ignored, ...same } = ready;
    expect(setCondition(list, same, t1)).toBe(list);
  });

  it('never mutates the input and leaves other conditions where they were', () => {
    const progressing: Condition = { ...ready, type: 'Progressing', status: 'True', reason: 'Scaling' };
    const list = [progressing, ready];
    const frozen = structuredClone(list);
    const next = setCondition(list, { type: 'Ready', status: 'True', reason: 'AllReady', message: 'ok' }, t1);
    expect(list).toEqual(frozen);
    expect(next.map((c) => c.type)).toEqual(['Progressing', 'Ready']);
    expect(next[0]).toBe(progressing);
  });

  it('adds a second type next to the first', () => {
    const next = setCondition([ready], { type: 'Degraded', status: 'False', reason: 'NoFailures', message: '' }, t1);
    expect(next.map((c) => [c.type, c.lastTransitionTime])).toEqual([
      ['Ready', '2026-01-01T00:00:00Z'],
      ['Degraded', '2026-01-02T03:09:00Z'],
    ]);
  });
});

describe('reading conditions', () => {
  const list: Condition[] = [ready, { ...ready, type: 'Degraded', status: 'True', reason: 'RestoreFailed' }];

  it('findCondition finds by type, or undefined', () => {
    expect(findCondition(list, 'Degraded')?.reason).toBe('RestoreFailed');
    expect(findCondition(list, 'Progressing')).toBeUndefined();
    expect(findCondition(undefined, 'Ready')).toBeUndefined();
  });

  it('isTrue is true only for status True; absent counts as Unknown', () => {
    expect(isTrue(list, 'Degraded')).toBe(true);
    expect(isTrue(list, 'Ready')).toBe(false);
    expect(isFalse(list, 'Ready')).toBe(true);
    expect(isTrue(list, 'Progressing')).toBe(false);
    expect(isFalse(list, 'Progressing')).toBe(false);
    expect(conditionStatus(list, 'Progressing')).toBe('Unknown');
    expect(isTrue(undefined, 'Ready')).toBe(false);
  });

  it('removeCondition drops one type, and returns the same array when absent', () => {
    expect(removeCondition(list, 'Ready').map((c) => c.type)).toEqual(['Degraded']);
    expect(removeCondition(list, 'Progressing')).toBe(list);
  });

  it('kubeTime drops the milliseconds', () => {
    expect(kubeTime(t0)).toBe('2026-01-02T03:04:05Z');
  });
});
