// What the machine does after an observation: a PURE function of the context and the plan.
// The order of the checks is the policy; each line says why it comes where it does.

import { FAILURE_POLICY, meaningOf } from '../../engine/failure-policy.js';
import type { DegradedReason } from '../../engine/types.js';
import { formatFieldErrors } from '../desired.js';
import { PrepareFailure, classifyFailure, type ClassifiedFailure } from '../errors.js';
import { isLeftover, type Plan, type SlotHistory } from '../planner.js';
import { compareSlotIds } from '../slots.js';
import type { CreateOutcome, Decision, ProbeKind, ReconcileContext, RemoveOutcome, WindowResult, WindowStep } from './types.js';

export function sourceKey(ctx: Pick<ReconcileContext, 'ref' | 'desired'>): string {
  return `${ctx.ref?.generation ?? 0}/${ctx.desired?.templateHash ?? ''}`;
}

/** A bad spec has nothing to probe; a source problem re-checks the source; anything else costs a restore. */
function probeKindFor(reason: DegradedReason): ProbeKind {
  if (reason === 'InvalidSpec') return 'none';
  return meaningOf(reason)?.source ? 'source' : 'restore';
}

/** Whether a Degraded reason is about the source, so the next look must ask the engine again. */
export function isSourceProblem(reason: DegradedReason): boolean {
  return meaningOf(reason)?.source === true;
}

/** A create that failed for a reason of its own (an aborted one is no failure of anything). */
function failedCreate(c: CreateOutcome): c is Extract<CreateOutcome, { ok: false }> {
  return !c.ok && !FAILURE_POLICY[c.failure.reason].aborted;
}

/** A removal worth retrying after a backoff (a permanent one is judged at the next observation). */
function retryableRemove(r: RemoveOutcome): r is Extract<RemoveOutcome, { ok: false }> {
  return !r.ok && FAILURE_POLICY[r.failure.reason].retry;
}

/** The window's first failure that makes it a failed round (drives the backoff), if any. */
export function windowFailure(w: Pick<WindowResult, 'creates' | 'removes'>): ClassifiedFailure | undefined {
  const failed = w.creates.find(failedCreate) ?? w.removes.find(retryableRemove);
  return failed ? failed.failure : undefined;
}

/** The window's creates that failed for a reason of their own, one Event each. */
export function failedCreates(creates: readonly CreateOutcome[]): Extract<CreateOutcome, { ok: false }>[] {
  return creates.filter(failedCreate);
}

/** The degraded reason for slots given up: the permanent reason, CriuFailed, or RestoreFailed. */
function failedSlotsCause(plan: Plan, history: ReadonlyMap<string, SlotHistory>): { reason: DegradedReason; message: string } {
  const entries = plan.summary.failedSlots.map((id) => [id, history.get(id)] as const);
  const permanent = entries.find(([, h]) => h?.lastFailure?.permanent);
  if (permanent) {
    const [id, h] = permanent;
    return { reason: h!.lastFailure!.reason, message: `replica ${id}: ${h!.lastFailure!.message}` };
  }
  const ids = entries.map(([id]) => id).join(', ');
  const last = entries.map(([, h]) => h?.lastFailure).find((f) => f !== undefined);
  const reason = last?.reason === 'CriuFailed' ? 'CriuFailed' : 'RestoreFailed';
  const detail = last ? ` (last: ${last.reason}: ${last.message})` : '';
  return {
    reason,
    message: `${entries.length} replica(s) failed after spending their restore attempts and fallback: ${ids}${detail}`,
  };
}

/**
 * `window` is the result of the restore window that just closed when this observation verifies
 * one, and undefined otherwise: a window's failures are acted on exactly once.
 */
export function decide(ctx: ReconcileContext, plan: Plan, window: WindowResult | undefined): Decision {
  const desired = ctx.desired;
  // Shutdown wins over everything: nothing new starts.
  if (ctx.stopRequested) return { kind: 'stop' };
  // Deletion wins over a bad spec and over paused: the finalizer must be able to complete.
  if (ctx.gone || desired?.deleting) return { kind: 'delete' };
  if (!desired || ctx.specErrors.length > 0) {
    return { kind: 'degraded', reason: 'InvalidSpec', message: formatFieldErrors(ctx.specErrors), probe: 'none' };
  }
  if (desired.paused) return { kind: 'paused' };
  // No Node object: the selector cannot be judged. Removing everything would be wrong (it is not a
  // mismatch) and so would creating: keep what runs until the Node is back.
  if (ctx.nodeUnknownSince !== undefined) return { kind: 'nodeUnknown' };
  // Docker unreachable: nothing is known, so nothing is planned.
  if (ctx.observeError) return { kind: 'backoff', reason: ctx.observeError.reason, message: ctx.observeError.message };

  const last = window;
  const permanent = last?.creates.find((c) => !c.ok && FAILURE_POLICY[c.failure.reason].permanent);
  if (permanent && !permanent.ok) {
    return {
      kind: 'degraded',
      reason: permanent.failure.reason,
      message: `replica ${permanent.replicaId}: ${permanent.failure.message}`,
      probe: probeKindFor(permanent.failure.reason),
    };
  }
  const probeSucceeded = last?.probe === true && last.creates.some((c) => c.ok);
  // Still Degraded: only a probe (canary) or a spec change gets out.
  if (ctx.degraded && !ctx.canary && !probeSucceeded) {
    return { kind: 'degraded', reason: ctx.degraded.reason, message: ctx.degraded.message, probe: ctx.degraded.probe };
  }
  const transient = last ? windowFailure(last) : undefined;
  if (transient) return { kind: 'backoff', reason: transient.reason, message: transient.message };

  if (plan.creates.length === 0 && plan.removes.length === 0) {
    if (plan.summary.failedSlots.length > 0) {
      const cause = failedSlotsCause(plan, ctx.history);
      return { kind: 'degraded', ...cause, probe: probeKindFor(cause.reason) };
    }
    return plan.converged ? { kind: 'converged' } : { kind: 'waiting' };
  }
  if (plan.creates.length > 0) {
    const checkSource = ctx.sourceVerifiedFor !== sourceKey(ctx);
    const ensureFinalizer = !ctx.finalizerEnsured;
    if (checkSource || ensureFinalizer) return { kind: 'prepare', checkSource, ensureFinalizer };
  }
  return { kind: 'restore' };
}

/**
 * While a window is open, after each restore or removal that finished: refill it, or let what runs
 * finish and look again from a fresh observation. The order of the checks is the policy.
 */
export function windowStep(ctx: Pick<ReconcileContext, 'window' | 'stopRequested' | 'gone' | 'desired' | 'specErrors' | 'ref'>): WindowStep {
  const w = ctx.window;
  if (!w) return { kind: 'drain', reason: 'no window is open' };
  // Once draining, it stays so: the reason is acted on after the fresh observation.
  if (w.draining) return { kind: 'drain', reason: w.draining };
  // Shutdown: nothing new starts, what runs may finish within the grace period.
  if (ctx.stopRequested) return { kind: 'drain', reason: 'the agent is shutting down' };
  // Deletion leaves the state at once; this only covers the moment in between.
  if (ctx.gone || ctx.desired?.deleting) return { kind: 'drain', reason: 'the resource is being deleted' };
  // A failed restore stops new starts: a broken checkpoint costs what is in flight, no more.
  const failed = w.creates.find(failedCreate);
  if (failed) return { kind: 'drain', reason: `replica ${failed.replicaId} failed: ${failed.failure.reason}` };
  // A restore that returned a container already dead is a failure the next observation counts.
  const died = w.creates.find((c) => c.ok && !c.replica.ready);
  if (died) return { kind: 'drain', reason: `replica ${died.replicaId} is not running after its start` };
  const removeFailed = w.removes.find((r) => !r.ok);
  if (removeFailed && !removeFailed.ok) return { kind: 'drain', reason: `removing ${removeFailed.containerId} failed: ${removeFailed.failure.reason}` };
  // A probe out of Degraded is one restore.
  if (w.probe) return { kind: 'drain', reason: 'a probe is one restore' };
  // A new spec (scale, template, pause) is planned from a fresh observation, not from the window's.
  if (!ctx.desired || ctx.specErrors.length > 0 || ctx.desired.paused) return { kind: 'drain', reason: 'the spec changed' };
  if (ctx.desired.templateHash !== w.templateHash || (ctx.ref?.generation ?? 0) !== w.ref.generation) {
    return { kind: 'drain', reason: 'the spec changed' };
  }
  return { kind: 'refill' };
}

/**
 * The window's creates in flight that the latest spec no longer wants: with `live` current replicas
 * (observed, or started by this window), only replicas - live more are still needed (lowest slot ids kept).
 */
export function unwantedCreates(ctx: Pick<ReconcileContext, 'window' | 'desired' | 'observed' | 'expectations'>): string[] {
  const { window, desired } = ctx;
  if (!window || !desired || desired.paused || desired.templateHash !== window.templateHash) return [];
  const removed = new Set([...window.removing, ...ctx.expectations.removes].map((r) => r.containerId));
  const live = ctx.observed.filter(
    (r) => !isLeftover(r) && r.state !== 'removing' && r.templateHash === desired.templateHash && !removed.has(r.containerId),
  ).length;
  const keep = Math.max(0, desired.replicas - live);
  return window.inFlight
    .map((c) => c.replicaId)
    .sort(compareSlotIds)
    .slice(keep);
}

/**
 * Preparing failed: a permanent source problem degrades at once (without spending a round); a
 * finalizer that could not be added, or any other failure, backs off and tries again.
 */
export function prepareFailed(ctx: Pick<ReconcileContext, 'failedRounds'>, error: unknown): Pick<ReconcileContext, 'decision' | 'failedRounds'> {
  const step = error instanceof PrepareFailure ? error.step : 'source';
  const failure = classifyFailure(error instanceof PrepareFailure ? error.failure : error);
  const meaning = FAILURE_POLICY[failure.reason];
  const permanent = step === 'source' && meaning.permanent;
  const decision: Decision = permanent
    ? { kind: 'degraded', reason: failure.reason, message: failure.message, probe: meaning.source ? 'source' : 'restore' }
    : {
        kind: 'backoff',
        reason: failure.reason,
        message: `${step === 'finalizer' ? 'adding the finalizer' : 'checking the checkpoint source'}: ${failure.message}`,
      };
  return { decision, failedRounds: permanent ? ctx.failedRounds : ctx.failedRounds + 1 };
}

/**
 * A resync may trigger only a SOURCE probe (one cheap inspect of the source container); a restore
 * probe costs a restore (and a leaked checkpoint copy in containerd), so it waits for its own
 * exponential timer however often resyncs arrive.
 */
export function probeDue(ctx: Pick<ReconcileContext, 'degraded'>, now: number, minProbeIntervalMs: number): boolean {
  return ctx.degraded?.probe === 'source' && now - ctx.degraded.lastProbeAt >= minProbeIntervalMs;
}

/** An engine event came in while observing: a rest planned from a list taken before it must look again. */
export function mustReobserve(ctx: Pick<ReconcileContext, 'reobserve' | 'decision'>): boolean {
  return ctx.reobserve && (ctx.decision?.kind === 'converged' || ctx.decision?.kind === 'waiting');
}
