import { describe, expect, it } from 'vitest';
import type { Replica } from '../../../controller/engine/types.js';
import { absorbLeftovers, startsAllowed, windowLimit, plan, type Plan, type PlannerInput } from '../../../controller/reconcile/planner.js';
import { SLOT_ID_PATTERN, allocateSlotIds } from '../../../controller/reconcile/slots.js';
import { allReady } from '../../../controller/reconcile/status.js';
import { HASH, OLD_HASH, desired, history, input, readyReplicas, replica } from './fixtures.js';

const ids = (list: { replicaId: string }[]): string[] => list.map((x) => x.replicaId);

describe('windowLimit and startsAllowed (slow start and bounds)', () => {
  it('the window is successes + 1: 1, 2, 4, 8, then the cap of 10 at the successes a doubling window reaches', () => {
    const d = desired({ replicas: 45 });
    const limits = [0, 1, 3, 7, 15, 25].map((successfulRestores) => windowLimit({ desired: d, successfulRestores, canary: false }));
    expect(limits).toEqual([1, 2, 4, 8, 10, 10]);
  });

  it('never exceeds maxConcurrent, and never 10 even if maxConcurrent says more', () => {
    expect(windowLimit({ desired: desired({ maxConcurrent: 3 }), successfulRestores: 100, canary: false })).toBe(3);
    expect(windowLimit({ desired: desired({ maxConcurrent: 50 }), successfulRestores: 100, canary: false })).toBe(10);
  });

  it('is 1 for a canary probe', () => {
    expect(windowLimit({ desired: desired(), successfulRestores: 100, canary: true })).toBe(1);
  });

  it('starts what the window has left, only into free host slots, and at least one when nothing of ours runs', () => {
    expect(startsAllowed({ engineInFlight: 0, engineLimit: 10, inFlight: 0 }, 10)).toBe(10);
    expect(startsAllowed({ engineInFlight: 7, engineLimit: 10, inFlight: 0 }, 10)).toBe(3);
    expect(startsAllowed({ engineInFlight: 10, engineLimit: 10, inFlight: 0 }, 10)).toBe(1);
    // Ours count against the window; the host's in flight (ours included) against its slots.
    expect(startsAllowed({ engineInFlight: 9, engineLimit: 10, inFlight: 9 }, 10)).toBe(1);
    expect(startsAllowed({ engineInFlight: 10, engineLimit: 10, inFlight: 9 }, 10)).toBe(0);
    expect(startsAllowed({ engineInFlight: 3, engineLimit: 10, inFlight: 3 }, 4)).toBe(1);
    expect(startsAllowed({ engineInFlight: 4, engineLimit: 10, inFlight: 4 }, 4)).toBe(0);
  });

  it('a plan with creates in flight (pending in expectations) starts only what the window has left', () => {
    const d = desired({ replicas: 20 });
    const pending = ['0', '1', '2'].map((replicaId) => ({ replicaId, templateHash: HASH, containerId: '', since: 0 }));
    const p = plan(input({ desired: d, successfulRestores: 3, engineInFlight: 3, expectations: { creates: pending, removes: [] }, inFlight: 3 }));
    expect(p.window).toBe(4);
    expect(ids(p.creates)).toEqual(['3']);
  });
});

describe('plan: creating', () => {
  it('from zero on an unproven checkpoint restores exactly one replica', () => {
    const p = plan(input({ desired: desired({ replicas: 12 }), successfulRestores: 0 }));
    expect(p.creates).toEqual([{ replicaId: '0', attempt: 1, mode: 'restore', cause: 'new' }]);
    expect(p.removes).toEqual([]);
    expect(p.converged).toBe(false);
  });

  it('from zero on a proven checkpoint restores a full batch of 10 with unique valid slot ids', () => {
    const p = plan(input({ desired: desired({ replicas: 12 }) }));
    expect(p.creates).toHaveLength(10);
    expect(new Set(ids(p.creates)).size).toBe(10);
    for (const c of p.creates) expect(c.replicaId).toMatch(SLOT_ID_PATTERN);
    expect(ids(p.creates)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });

  it('45 replicas from zero take batches of 1, 2, 4, 8, 10, 10, 10 when every restore succeeds', () => {
    let observed: Replica[] = [];
    let successes = 0;
    const batches: number[] = [];
    for (let round = 0; round < 20; round++) {
      const p = plan(input({ desired: desired({ replicas: 45 }), observed, successfulRestores: successes }));
      if (p.converged) break;
      batches.push(p.creates.length);
      observed = [...observed, ...p.creates.map((c) => replica(c.replicaId, { attempt: c.attempt }))];
      successes += p.creates.length;
    }
    expect(batches).toEqual([1, 2, 4, 8, 10, 10, 10]);
    expect(new Set(observed.map((r) => r.replicaId)).size).toBe(45);
  });

  it('counts ready restored replicas as proof of the checkpoint (an agent restarted mid-rollout does not slow-start again)', () => {
    const adopted = plan(input({ desired: desired({ replicas: 20 }), observed: readyReplicas(8), successfulRestores: 0 }));
    expect(adopted.window).toBe(9);
    expect(adopted.creates).toHaveLength(9);
    expect(ids(adopted.creates)[0]).toBe('8');
    // Cold-started replicas prove nothing about the checkpoint.
    const cold = plan(input({ desired: desired({ replicas: 20 }), observed: readyReplicas(8, { startMode: 'cold' }), successfulRestores: 0 }));
    expect(cold.creates).toHaveLength(1);
  });

  it('never plans above desired from a stale cache: creates in flight or not yet observed are counted', () => {
    const p = plan(
      input({
        desired: desired({ replicas: 3 }),
        observed: [replica('0')],
        expectations: {
          creates: [
            { replicaId: '1', templateHash: HASH, containerId: 'c1', since: 0 },
            { replicaId: '2', templateHash: HASH, containerId: 'c2', since: 0 },
          ],
          removes: [],
        },
      }),
    );
    expect(p.creates).toEqual([]);
    expect(p.summary.pending).toBe(2);
    expect(p.converged).toBe(false);
  });

  it('a pending create that has been observed is not counted twice', () => {
    const p = plan(
      input({
        desired: desired({ replicas: 2 }),
        observed: [replica('0', { containerId: 'c0' })],
        expectations: { creates: [{ replicaId: '0', templateHash: HASH, containerId: 'c0', since: 0 }], removes: [] },
      }),
    );
    expect(ids(p.creates)).toEqual(['1']);
  });

  it('a container we removed that the stale list still shows is neither counted nor removed again', () => {
    const observed = readyReplicas(3);
    const gone = observed[2]!;
    const p = plan(
      input({
        desired: desired({ replicas: 3 }),
        observed,
        expectations: { creates: [], removes: [{ replicaId: gone.replicaId, containerId: gone.containerId, since: 0 }] },
      }),
    );
    expect(p.removes).toEqual([]);
    expect(p.creates).toHaveLength(1);
    // The removed slot's id is not reused while its removal is unconfirmed.
    expect(p.creates[0]!.replicaId).toBe('3');
  });

  it('a scale-down is not Ready while a container whose removal is planned is still observed', () => {
    const observed = readyReplicas(6);
    const excess = observed[5]!;
    const input5 = (removes: { replicaId: string; containerId: string; since: number }[]) =>
      plan(input({ desired: desired({ replicas: 5 }), observed, expectations: { creates: [], removes } }));
    const during = input5([{ replicaId: excess.replicaId, containerId: excess.containerId, since: 0 }]);
    expect(during.summary).toMatchObject({ replicas: 5, ready: 5, removing: 1 });
    expect(allReady(during.summary)).toBe(false);
    const after = plan(input({ desired: desired({ replicas: 5 }), observed: observed.slice(0, 5) }));
    expect(after.summary.removing).toBe(0);
    expect(allReady(after.summary)).toBe(true);
  });

  it('skips slot ids already used by any container, history entry or expectation', () => {
    expect(allocateSlotIds(new Set(['0', '2']), 3)).toEqual(['1', '3', '4']);
    const p = plan(input({ desired: desired({ replicas: 3 }), observed: [replica('1')], history: history({ '0': { failedRestores: 0 } }) }));
    expect(ids(p.creates).sort()).toEqual(['0', '2']);
  });

  it('is converged only when every desired replica is ready on the current template and nothing else exists', () => {
    expect(plan(input({ desired: desired({ replicas: 3 }), observed: readyReplicas(3) })).converged).toBe(true);
    const notReady = readyReplicas(3);
    notReady[1] = { ...notReady[1]!, ready: false, state: 'restarting' };
    const p = plan(input({ desired: desired({ replicas: 3 }), observed: notReady }));
    expect(p.converged).toBe(false);
    expect(p.creates).toEqual([]);
    expect(p.removes).toEqual([]);
    expect(p.summary.notReady).toBe(1);
    expect(plan(input({ desired: desired({ replicas: 0 }) })).converged).toBe(true);
  });
});

describe('plan: scaling down', () => {
  it('12 -> 3 removes 9: the not-ready ones first, then the newest ready ones', () => {
    const observed = readyReplicas(12);
    // Two old replicas are not ready: they go first even though they are not the newest.
    observed[1] = { ...observed[1]!, ready: false, state: 'restarting' };
    observed[2] = { ...observed[2]!, ready: false, state: 'paused' };
    const p = plan(input({ desired: desired({ replicas: 3 }), observed }));
    expect(p.creates).toEqual([]);
    expect(p.removes).toHaveLength(9);
    expect(p.removes.every((r) => r.cause === 'scale-down')).toBe(true);
    const removed = ids(p.removes);
    expect(removed.slice(0, 2).sort()).toEqual(['1', '2']);
    expect(removed.slice(2)).toEqual(['b', 'a', '9', '8', '7', '6', '5']);
    const kept = observed.filter((r) => !removed.includes(r.replicaId)).map((r) => r.replicaId);
    expect(kept).toEqual(['0', '3', '4']);
    expect(p.forget.sort()).toEqual(removed.sort());
  });

  it('drops slots waiting for a retry before removing any container', () => {
    const p = plan(
      input({
        desired: desired({ replicas: 2 }),
        observed: readyReplicas(2),
        history: history({ '5': { failedRestores: 1 }, '6': { failedRestores: 3 } }),
      }),
    );
    expect(p.removes).toEqual([]);
    expect(p.creates).toEqual([]);
    expect(p.forget.sort()).toEqual(['5', '6']);
  });

  it('scales to zero by removing everything', () => {
    const p = plan(input({ desired: desired({ replicas: 0 }), observed: readyReplicas(4) }));
    expect(p.removes).toHaveLength(4);
    expect(p.creates).toEqual([]);
  });
});

describe('plan: template change (rolling, surge under the bound)', () => {
  /** Applies plans as if every create succeeded instantly and ready; returns every step's plan. */
  function rollout(start: PlannerInput, maxRounds = 30): { steps: Plan[]; observed: Replica[]; maxTotal: number; minServing: number } {
    let observed = [...start.observed];
    let successes = start.successfulRestores;
    const steps: Plan[] = [];
    let maxTotal = observed.length;
    let minServing = observed.filter((r) => r.ready).length;
    let clock = 2_000_000_000_000;
    for (let round = 0; round < maxRounds; round++) {
      const p = plan({ ...start, observed, successfulRestores: successes });
      steps.push(p);
      if (p.converged) break;
      const removed = new Set(p.removes.map((r) => r.containerId));
      observed = observed.filter((r) => !removed.has(r.containerId));
      // Mid-batch both the surviving and the new containers exist.
      minServing = Math.min(minServing, observed.filter((r) => r.ready).length);
      observed = [...observed, ...p.creates.map((c) => replica(c.replicaId, { attempt: c.attempt, createdAt: new Date(clock++) }))];
      successes += p.creates.length;
      maxTotal = Math.max(maxTotal, observed.length);
    }
    return { steps, observed, maxTotal, minServing };
  }

  it('replaces all 12 replicas; never more than 10 restores per batch; never more than desired + 10 containers; never fewer than 12 serving', () => {
    const result = rollout(input({ desired: desired({ replicas: 12 }), observed: readyReplicas(12, { templateHash: OLD_HASH }), successfulRestores: 0 }));
    const last = result.steps.at(-1)!;
    expect(last.converged).toBe(true);
    expect(result.observed).toHaveLength(12);
    expect(result.observed.every((r) => r.templateHash === HASH)).toBe(true);
    for (const step of result.steps) expect(step.creates.length).toBeLessThanOrEqual(10);
    expect(result.maxTotal).toBeLessThanOrEqual(22);
    expect(result.minServing).toBeGreaterThanOrEqual(12);
    // Slow start applies to the new checkpoint: the first batch is a single restore.
    expect(result.steps[0]!.creates).toHaveLength(1);
    expect(result.steps[0]!.removes).toEqual([]);
  });

  it('with maxConcurrent 2 the surge never exceeds desired + 2', () => {
    const result = rollout(
      input({ desired: desired({ replicas: 5, maxConcurrent: 2 }), observed: readyReplicas(5, { templateHash: OLD_HASH }), successfulRestores: 50 }),
    );
    expect(result.steps.at(-1)!.converged).toBe(true);
    expect(result.maxTotal).toBeLessThanOrEqual(7);
    for (const step of result.steps) expect(step.creates.length).toBeLessThanOrEqual(2);
  });

  it('removes an old replica only when a ready new one takes its place', () => {
    const observed = [...readyReplicas(3, { templateHash: OLD_HASH }), replica('3'), replica('4', { ready: false, state: 'restarting' })];
    const p = plan(input({ desired: desired({ replicas: 3 }), observed }));
    expect(p.removes.map((r) => [r.cause, r.templateHash])).toEqual([['outdated', OLD_HASH]]);
  });

  it('forgets the history of the old template', () => {
    const p = plan(input({ desired: desired({ replicas: 1 }), history: history({ '0': { templateHash: OLD_HASH } }) }));
    expect(p.forget).toEqual(['0']);
    expect(ids(p.creates)).toEqual(['1']);
  });
});

describe('plan: failures and leftovers', () => {
  it('retries a failed slot with the next attempt number before opening new slots', () => {
    const p = plan(input({ desired: desired({ replicas: 3 }), observed: [replica('0')], history: history({ '1': { lastAttempt: 2, failedRestores: 2 } }) }));
    expect(p.creates).toEqual([
      { replicaId: '1', attempt: 3, mode: 'restore', cause: 'retry' },
      { replicaId: '2', attempt: 1, mode: 'restore', cause: 'new' },
    ]);
  });

  it('leaves a slot failed once maxAttempts are spent and fallback is None, without opening another slot for it', () => {
    const p = plan(
      input({ desired: desired({ replicas: 2, maxAttempts: 3 }), observed: [replica('0')], history: history({ '1': { lastAttempt: 3, failedRestores: 3 } }) }),
    );
    expect(p.creates).toEqual([]);
    expect(p.summary.failedSlots).toEqual(['1']);
    expect(p.converged).toBe(false);
  });

  it('cold-starts a slot once maxAttempts are spent and fallback is ColdStart; gives up if that fails too', () => {
    const d = desired({ replicas: 1, maxAttempts: 3, fallback: 'ColdStart' });
    const p = plan(input({ desired: d, history: history({ '0': { lastAttempt: 3, failedRestores: 3 } }) }));
    expect(p.creates).toEqual([{ replicaId: '0', attempt: 4, mode: 'cold', cause: 'fallback' }]);
    const after = plan(input({ desired: d, history: history({ '0': { lastAttempt: 4, failedRestores: 3, coldStartFailed: true } }) }));
    expect(after.creates).toEqual([]);
    expect(after.summary.failedSlots).toEqual(['0']);
  });

  it('a permanent failure blocks every create of the resource; a canary probe retries exactly that slot once', () => {
    const h = history({ '0': { lastFailure: { reason: 'CheckpointNotFound', message: 'no such checkpoint', permanent: true } } });
    const blocked = plan(input({ desired: desired({ replicas: 12 }), history: h }));
    expect(blocked.creates).toEqual([]);
    expect(blocked.summary.failedSlots).toEqual(['0']);
    expect(blocked.summary.blockedSlots).toEqual(['0']);
    const probe = plan(input({ desired: desired({ replicas: 12 }), history: h, canary: true }));
    expect(probe.creates).toEqual([{ replicaId: '0', attempt: 2, mode: 'restore', cause: 'probe' }]);
  });

  it("replaces a container left in 'created' by an agent killed mid-restore, with a new attempt number", () => {
    const leftover = replica('0', { state: 'created', ready: false, attempt: 1 });
    const p = plan(input({ desired: desired({ replicas: 2 }), observed: [leftover, replica('1')] }));
    expect(p.removes).toEqual([{ containerId: leftover.containerId, replicaId: '0', templateHash: HASH, cause: 'leftover' }]);
    expect(p.creates).toEqual([{ replicaId: '0', attempt: 2, mode: 'restore', cause: 'replace' }]);
  });

  it('removes leftovers of an old template without recreating their slot', () => {
    const leftover = replica('7', { state: 'exited', ready: false, templateHash: OLD_HASH });
    const p = plan(input({ desired: desired({ replicas: 1 }), observed: [leftover, replica('0')] }));
    expect(p.removes.map((r) => r.cause)).toEqual(['leftover']);
    expect(p.creates).toEqual([]);
  });

  it('keeps one container per slot: the ready one, then the latest attempt', () => {
    const a = replica('0', { attempt: 1, ready: false, state: 'restarting' });
    const b = replica('0', { attempt: 2 });
    const p = plan(input({ desired: desired({ replicas: 1 }), observed: [a, b] }));
    expect(p.removes).toEqual([{ containerId: a.containerId, replicaId: '0', templateHash: HASH, cause: 'duplicate' }]);
    expect(p.creates).toEqual([]);
  });

  it('absorbLeftovers counts an exited restore as a failed attempt but not a created leftover', () => {
    const observed = [replica('0', { state: 'exited', ready: false, attempt: 2 }), replica('1', { state: 'created', ready: false, attempt: 1 }), replica('2')];
    const h = absorbLeftovers(history({ '0': { lastAttempt: 1, failedRestores: 1 } }), observed, HASH);
    expect(h.get('0')).toMatchObject({ lastAttempt: 2, failedRestores: 2 });
    expect(h.get('1')).toMatchObject({ lastAttempt: 1, failedRestores: 0 });
    expect(h.has('2')).toBe(false);
    // Idempotent: absorbing the same observation again counts nothing twice.
    expect(absorbLeftovers(h, observed, HASH)).toEqual(h);
  });

  it('absorbLeftovers counts a restore that succeeded and then died, exactly once', () => {
    const succeeded = history({ '0': { lastAttempt: 2, failedRestores: 1, lastFailure: undefined } });
    const died = [replica('0', { state: 'exited', ready: false, attempt: 2 })];
    const once = absorbLeftovers(succeeded, died, HASH);
    expect(once.get('0')).toMatchObject({ lastAttempt: 2, failedRestores: 2, deadAttempt: 2 });
    expect(absorbLeftovers(once, died, HASH)).toEqual(once);
  });
});

describe('plan: paused and deleting', () => {
  it('paused changes nothing, even with work to do', () => {
    const observed = [...readyReplicas(2), replica('9', { state: 'created', ready: false })];
    const p = plan(input({ desired: desired({ replicas: 12, paused: true }), observed }));
    expect(p.creates).toEqual([]);
    expect(p.removes).toEqual([]);
    expect(p.summary.ready).toBe(2);
  });

  it('deleting removes every container, leftovers included, and creates nothing', () => {
    const observed = [...readyReplicas(3), replica('9', { state: 'created', ready: false }), replica('8', { templateHash: OLD_HASH })];
    const p = plan(input({ desired: desired({ replicas: 12, deleting: true }), observed }));
    expect(p.creates).toEqual([]);
    expect(p.removes).toHaveLength(5);
    expect(p.removes.every((r) => r.cause === 'deleting')).toBe(true);
    expect(plan(input({ desired: desired({ deleting: true }) })).converged).toBe(true);
  });

  it('deleting even while paused', () => {
    const p = plan(input({ desired: desired({ paused: true, deleting: true }), observed: readyReplicas(2) }));
    expect(p.removes).toHaveLength(2);
  });
});
