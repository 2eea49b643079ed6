// Unit tests of the small pure modules: decision, status, expectations, orphans, desired, errors.
import { describe, expect, it } from 'vitest';
import { EngineError } from '../../../controller/engine/errors.js';
import { backoffDelay } from '../../../controller/backoff.js';
import { desiredState, validateForReconcile } from '../../../controller/reconcile/desired.js';
import { classifyFailure } from '../../../controller/reconcile/errors.js';
import { expectCreated, expectRemoved, settleExpectations } from '../../../controller/reconcile/expectations.js';
import { decide } from '../../../controller/reconcile/machine/decide.js';
import { initialContext } from '../../../controller/reconcile/machine/machine.js';
import type { WindowResult, ReconcileContext } from '../../../controller/reconcile/machine/types.js';
import { findOrphans } from '../../../controller/reconcile/orphans.js';
import { plan } from '../../../controller/reconcile/planner.js';
import { computeNodeStatus, sameNodeStatus, type NodeStatusInput } from '../../../controller/reconcile/status.js';
import { templateHash } from '../../../controller/reconcile/template-hash.js';
import { HASH, desired, history, input, readyReplicas, replica } from './fixtures.js';
import { resource } from './harness.js';

function ctx(overrides: Partial<ReconcileContext> = {}): ReconcileContext {
  return {
    ...initialContext({ key: 'default/web' }),
    ref: { namespace: 'default', name: 'web', uid: 'uid-web', generation: 1 },
    desired: desired({ replicas: 3 }),
    sourceVerifiedFor: `1/${HASH}`,
    finalizerEnsured: true,
    ...overrides,
  };
}

function windowOf(creates: WindowResult['creates'], probe = false): WindowResult {
  return { number: 1, templateHash: HASH, probe, creates, removes: [], seconds: 1 };
}

const failure = (reason: 'RestoreRace' | 'ImageNotFound' | 'Aborted' | 'CriuFailed', replicaId = '0') =>
  ({
    replicaId,
    attempt: 1,
    mode: 'restore',
    cause: 'new',
    ok: false,
    failure: { reason, transient: reason === 'RestoreRace', message: `${reason}!` },
    seconds: 1,
  }) as const;

describe('decide', () => {
  const work = plan(input({ desired: desired({ replicas: 3 }) }));
  const done = plan(input({ desired: desired({ replicas: 3 }), observed: readyReplicas(3) }));

  it('orders: stop, delete, invalid spec, paused, engine errors, permanent failures, transient failures, work', () => {
    expect(decide(ctx({ stopRequested: true, gone: true }), work, undefined).kind).toBe('stop');
    expect(
      decide(ctx({ desired: desired({ deleting: true, paused: true }), specErrors: [{ field: 'spec.replicas', reason: 'x' }] }), work, undefined).kind,
    ).toBe('delete');
    expect(decide(ctx({ specErrors: [{ field: 'spec.replicas', reason: 'must be an integer' }] }), work, undefined)).toEqual({
      kind: 'degraded',
      reason: 'InvalidSpec',
      message: 'spec.replicas: must be an integer',
      probe: 'none',
    });
    expect(decide(ctx({ desired: desired({ paused: true }) }), work, undefined).kind).toBe('paused');
    expect(decide(ctx({ observeError: { reason: 'EngineUnavailable', transient: true, message: 'down' } }), work, undefined).kind).toBe('backoff');
    expect(decide(ctx(), work, windowOf([failure('ImageNotFound')]))).toMatchObject({ kind: 'degraded', reason: 'ImageNotFound', probe: 'restore' });
    expect(decide(ctx(), work, windowOf([failure('RestoreRace')]))).toMatchObject({ kind: 'backoff', reason: 'RestoreRace' });
    expect(decide(ctx(), work, windowOf([failure('CriuFailed')]))).toMatchObject({ kind: 'backoff', reason: 'CriuFailed' });
    expect(decide(ctx(), work, windowOf([failure('Aborted')])).kind).toBe('restore');
    expect(decide(ctx(), done, undefined).kind).toBe('converged');
  });

  it('asks to prepare (check the source, add the finalizer) before the first create of a generation', () => {
    expect(decide(ctx({ sourceVerifiedFor: undefined }), work, undefined)).toEqual({ kind: 'prepare', checkSource: true, ensureFinalizer: false });
    expect(decide(ctx({ finalizerEnsured: false }), work, undefined)).toEqual({ kind: 'prepare', checkSource: false, ensureFinalizer: true });
    // Removing needs neither.
    const shrink = plan(input({ desired: desired({ replicas: 1 }), observed: readyReplicas(3) }));
    expect(decide(ctx({ sourceVerifiedFor: undefined, finalizerEnsured: false }), shrink, undefined).kind).toBe('restore');
  });

  it('stays Degraded until a probe succeeds', () => {
    const degraded = { reason: 'CheckpointNotFound' as const, message: 'gone', probe: 'source' as const, generation: 1, since: 0, probes: 1, lastProbeAt: 0 };
    expect(decide(ctx({ degraded }), work, undefined).kind).toBe('degraded');
    expect(decide(ctx({ degraded, canary: true }), work, undefined).kind).toBe('restore');
    const ok = { replicaId: '0', attempt: 2, mode: 'restore', cause: 'probe', ok: true, replica: replica('0'), seconds: 1 } as const;
    expect(decide(ctx({ degraded }), work, windowOf([ok], true)).kind).toBe('restore');
  });

  it('waits (not converged) while a replica is not ready; Degraded RestoreFailed/CriuFailed when slots are given up', () => {
    const notReady = plan(input({ desired: desired({ replicas: 1 }), observed: [replica('0', { ready: false, state: 'restarting' })] }));
    expect(decide(ctx(), notReady, undefined).kind).toBe('waiting');
    const h = history({ '0': { failedRestores: 3, lastAttempt: 3, lastFailure: { reason: 'CriuFailed', message: 'criu says no', permanent: false } } });
    const givenUp = plan(input({ desired: desired({ replicas: 1 }), history: h }));
    expect(decide(ctx({ history: h }), givenUp, undefined)).toMatchObject({ kind: 'degraded', reason: 'CriuFailed', probe: 'restore' });
  });
});

describe('computeNodeStatus', () => {
  const base = (over: Partial<NodeStatusInput> = {}): NodeStatusInput => ({
    node: 'node-a',
    generation: 4,
    summary: plan(input({ desired: desired({ replicas: 3 }), observed: readyReplicas(3) })).summary,
    restoringNow: 0,
    paused: false,
    progress: { status: 'False', reason: 'Converged', message: 'ok' },
    now: new Date('2030-01-01T00:00:00Z'),
    ...over,
  });

  it('Ready True with counts and observedGeneration on every condition', () => {
    const s = computeNodeStatus(base());
    expect(s).toMatchObject({ node: 'node-a', observedGeneration: 4, replicas: 3, readyReplicas: 3, restoringReplicas: 0, failedReplicas: 0 });
    expect(s.conditions!.map((c) => [c.type, c.status, c.reason, c.observedGeneration])).toEqual([
      ['Ready', 'True', 'AllReplicasReady', 4],
      ['Progressing', 'False', 'Converged', 4],
      ['Degraded', 'False', 'AsExpected', 4],
    ]);
  });

  it('keeps lastTransitionTime while a condition keeps its status, moves it when the status flips', () => {
    const first = computeNodeStatus(base());
    const later = computeNodeStatus(
      base({ previous: first, now: new Date('2030-01-01T00:05:00Z'), progress: { status: 'False', reason: 'Converged', message: 'still ok' } }),
    );
    expect(later.conditions![0]!.lastTransitionTime).toBe('2030-01-01T00:00:00Z');
    const broken = computeNodeStatus(
      base({ previous: first, now: new Date('2030-01-01T00:06:00Z'), degraded: { reason: 'ImageNotFound', message: 'no image' } }),
    );
    expect(broken.conditions![2]).toMatchObject({ status: 'True', reason: 'ImageNotFound', lastTransitionTime: '2030-01-01T00:06:00Z' });
  });

  it('sameNodeStatus ignores timestamps only', () => {
    const a = computeNodeStatus(base());
    const b = computeNodeStatus(base({ now: new Date('2031-01-01T00:00:00Z') }));
    expect(sameNodeStatus(a, b)).toBe(true);
    expect(sameNodeStatus(a, computeNodeStatus(base({ restoringNow: 2 })))).toBe(false);
    expect(sameNodeStatus(undefined, a)).toBe(false);
  });

  it('Ready False with reason Paused when paused and not all ready', () => {
    const summary = plan(input({ desired: desired({ replicas: 5, paused: true }), observed: readyReplicas(2) })).summary;
    const s = computeNodeStatus(base({ summary, paused: true }));
    expect(s.conditions![0]).toMatchObject({ status: 'False', reason: 'Paused', message: '2/5 replicas ready on node node-a' });
  });
});

describe('expectations', () => {
  it('are settled by an observation and expire after the TTL', () => {
    let e = expectCreated({ creates: [], removes: [] }, [{ replicaId: '0', templateHash: HASH, containerId: 'c0', since: 0 }]);
    e = expectRemoved(e, [{ replicaId: '1', containerId: 'c1', since: 0 }]);
    // Neither observed yet: the create is pending, the removed one still listed.
    const stale = settleExpectations(e, [replica('1', { containerId: 'c1' })], 1000, 60_000);
    expect(stale).toEqual(e);
    // The truth arrives: both settle.
    expect(settleExpectations(e, [replica('0', { containerId: 'c0' })], 1000, 60_000)).toEqual({ creates: [], removes: [] });
    // Never confirmed: dropped after the TTL.
    expect(settleExpectations(e, [replica('1', { containerId: 'c1' })], 60_000, 60_000)).toEqual({ creates: [], removes: [] });
  });
});

describe('findOrphans', () => {
  it('selects only containers of unknown, inactive owners that are old enough', () => {
    const old = new Date(0);
    const replicas = [
      replica('0', { ownerUid: 'gone', createdAt: old }),
      replica('1', { ownerUid: 'known', createdAt: old }),
      replica('2', { ownerUid: 'active', createdAt: old }),
      replica('3', { ownerUid: 'gone', createdAt: new Date(100_000) }),
    ];
    const orphans = findOrphans({ replicas, knownUids: new Set(['known']), activeUids: new Set(['active']), now: 120_000, minAgeMs: 60_000 });
    expect(orphans.map((r) => r.replicaId)).toEqual(['0']);
  });
});

describe('desired state and validation', () => {
  it('names the field and the reason', () => {
    const bad = resource({ replicas: 3 });
    bad.spec.replicas = -1;
    bad.spec.restore.maxConcurrent = 11;
    bad.spec.checkpoint = { container: 'x' };
    expect(validateForReconcile(bad)).toEqual([
      { field: 'spec.replicas', reason: 'must be between 0 and 10000, got -1' },
      { field: 'spec.restore.maxConcurrent', reason: 'must be between 1 and 10, got 11' },
      { field: 'spec.checkpoint.name', reason: 'is required with spec.checkpoint.container' },
    ]);
  });

  it('plans an invalid spec as paused so nothing on the host changes', () => {
    const bad = resource({ replicas: 3 });
    bad.spec.restore.maxAttempts = 0;
    const { desired: d, errors } = desiredState(bad, false);
    expect(errors).toHaveLength(1);
    expect(d.paused).toBe(true);
  });

  it('template hash: 10 hex chars, stable under key order, changes with the template or the checkpoint', () => {
    const a = resource().spec;
    const reordered = { checkpoint: { name: 'warm', container: 'app-template' }, template: { image: a.template.image } };
    expect(templateHash(a)).toMatch(/^[0-9a-f]{10}$/);
    expect(templateHash(reordered)).toBe(templateHash(a));
    expect(templateHash({ ...a, template: { image: 'other' } })).not.toBe(templateHash(a));
    expect(templateHash({ ...a, checkpoint: { container: 'app-template', name: 'cold' } })).not.toBe(templateHash(a));
    // replicas and restore policy are not part of it: scaling never replaces replicas.
    expect(templateHash({ ...a, replicas: 99 } as typeof a)).toBe(templateHash(a));
  });
});

describe('classifyFailure and backoff', () => {
  it('reads EngineError codes, keeps AbortError apart, treats anything else as transient Unknown', () => {
    expect(classifyFailure(new EngineError('ImageNotFound', 'no such image'))).toEqual({ reason: 'ImageNotFound', transient: false, message: 'no such image' });
    expect(classifyFailure(new EngineError('RestoreRace', 'already exists'))).toMatchObject({ reason: 'RestoreRace', transient: true });
    expect(classifyFailure(Object.assign(new Error('aborted'), { name: 'AbortError' }))).toMatchObject({ reason: 'Aborted', transient: false });
    expect(classifyFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toMatchObject({ reason: 'Unknown', transient: true });
    expect(classifyFailure('weird')).toEqual({ reason: 'Unknown', transient: true, message: 'weird' });
  });

  it('backoff doubles and caps', () => {
    const policy = { initialMs: 1000, maxMs: 60_000 };
    expect([1, 2, 3, 6, 7, 50].map((n) => backoffDelay(policy, n))).toEqual([1000, 2000, 4000, 32_000, 60_000, 60_000]);
  });
});
