// The machine's context and the pure helpers its `assign` actions call: each takes the context
// (and the env: the time, the options, the engine's load) and returns what changes.

import type { CheckpointReplicaSet } from '../../api/types.js';
import { FAILURE_POLICY } from '../../engine/failure-policy.js';
import type { Replica, RestoreEngine } from '../../engine/types.js';
import { desiredState, refOf } from '../desired.js';
import { classifyFailure } from '../errors.js';
import { expectCreated, expectRemoved, settleExpectations } from '../expectations.js';
import { countFailure, forgiveBefore, type FailureCounting } from '../forgiveness.js';
import { absorbLeftovers, plan as planWork, type Plan, type PlannedCreate, type SlotHistory } from '../planner.js';
import { decide, isSourceProblem, windowFailure } from './decide.js';
import type { ReconcileEvent } from './events.js';
import type {
  CreateOutcome,
  MachineDeps,
  MachineInput,
  MachineOptions,
  ReconcileContext,
  RemoveOutcome,
  WindowReport,
  WindowResult,
  WindowState,
} from './types.js';

/** What the helpers read besides the context: the time now, the options, the engine's load. */
export interface ContextEnv {
  now: number;
  options: MachineOptions;
  engine: Pick<RestoreEngine, 'inFlight' | 'concurrencyLimit'>;
}

const EMPTY_PLAN: Plan = {
  creates: [],
  removes: [],
  forget: [],
  window: 1,
  summary: {
    desired: 0,
    replicas: 0,
    ready: 0,
    coldStarted: 0,
    outdated: 0,
    pending: 0,
    failedSlots: [],
    blockedSlots: [],
    waitingSlots: [],
    notReady: 0,
    removing: 0,
  },
  converged: false,
};

export function initialContext(input: MachineInput): ReconcileContext {
  return {
    key: input.key,
    resource: undefined,
    gone: false,
    selected: true,
    nodeUnknownSince: undefined,
    ref: undefined,
    desired: undefined,
    specErrors: [],
    observed: [],
    observeError: undefined,
    expectations: { creates: [], removes: [] },
    history: new Map(),
    successes: { templateHash: '', count: 0 },
    plan: undefined,
    decision: undefined,
    window: undefined,
    lastWindow: undefined,
    windowCount: 0,
    failedRounds: 0,
    degraded: undefined,
    announcedDegraded: undefined,
    canary: false,
    sourceVerifiedFor: undefined,
    finalizerEnsured: false,
    stopRequested: false,
    generationSince: { generation: -1, at: 0 },
    convergedGeneration: undefined,
    deleteFailures: 0,
    lastStatus: undefined,
    reobserve: false,
    diedSinceList: [],
    engineOutage: undefined,
  };
}

/** The context after a new object: a new generation resets what only a spec change may reset. */
export function applyResource(
  ctx: ReconcileContext,
  resource: CheckpointReplicaSet,
  now: number,
  deps: Pick<MachineDeps, 'agentLimits' | 'selectsNode'>,
): Partial<ReconcileContext> {
  const selection = deps.selectsNode?.(resource) ?? true;
  // Unknown keeps the spec's count (for status); decide() then holds instead of acting.
  const selected = selection !== false;
  const nodeUnknownSince = selection === 'unknown' ? (ctx.nodeUnknownSince ?? now) : undefined;
  const { desired, errors } = desiredState(resource, ctx.gone, deps.agentLimits, selected);
  const ref = refOf(resource);
  const update: Partial<ReconcileContext> = { resource, ref, desired, specErrors: errors, selected, nodeUnknownSince };
  if (ref.generation !== ctx.generationSince.generation) {
    update.generationSince = { generation: ref.generation, at: now };
    // "Degraded stays until the spec changes": a new spec gets a fresh look, once.
    if (ctx.degraded && ctx.degraded.generation !== ref.generation) {
      update.degraded = undefined;
      update.canary = false;
      const history = new Map<string, SlotHistory>();
      for (const [id, entry] of ctx.history) {
        history.set(id, entry.lastFailure?.permanent ? { ...entry, lastFailure: undefined } : entry);
      }
      update.history = history;
    }
  }
  return update;
}

/** The object vanished from the API: whatever was desired, it is now being deleted. */
export function markGone(ctx: ReconcileContext): Partial<ReconcileContext> {
  return { gone: true, desired: ctx.desired ? { ...ctx.desired, deleting: true } : desiredState(undefined, true).desired };
}

function counting(ctx: ReconcileContext, env: ContextEnv): FailureCounting {
  return { now: env.now, provenAfterMs: env.options.provenAfterMs, outage: ctx.engineOutage, outageGraceMs: env.options.outageGraceMs };
}

/** The slots' history after creates finished (one at a time as a window reports them). */
function historyAfter(
  history: ReadonlyMap<string, SlotHistory>,
  templateHash: string,
  creates: readonly CreateOutcome[],
  counting: FailureCounting,
): Map<string, SlotHistory> {
  const next = new Map(history);
  for (const c of creates) {
    const entry = next.get(c.replicaId) ?? { templateHash, lastAttempt: 0, failedRestores: 0, coldStartFailed: false };
    const base: SlotHistory = { ...entry, templateHash, lastAttempt: Math.max(entry.lastAttempt, c.attempt) };
    if (c.ok) {
      next.set(c.replicaId, { ...base, lastFailure: undefined });
    } else if (!FAILURE_POLICY[c.failure.reason].spendsAttempt) {
      // The engine, not the restore, failed (unreachable, or we aborted it).
      next.set(c.replicaId, base);
    } else {
      const permanent = FAILURE_POLICY[c.failure.reason].permanent;
      next.set(c.replicaId, {
        ...(c.mode === 'restore' ? countFailure(base, counting) : base),
        coldStartFailed: base.coldStartFailed || c.mode === 'cold',
        lastFailure: { reason: c.failure.reason, message: c.failure.message, permanent },
      });
    }
  }
  return next;
}

/** The observed list with a replica the engine just reported started (it is running, so ready). */
function withReplica(observed: readonly Replica[], replica: Replica): Replica[] {
  return [...observed.filter((r) => r.containerId !== replica.containerId), replica];
}

const sameCreate = (a: PlannedCreate, b: PlannedCreate): boolean => a.replicaId === b.replicaId && a.attempt === b.attempt;

/** Observation -> expectations, history, plan and the decision (all pure). */
export function afterObservation(ctx: ReconcileContext, observed: Replica[], window: WindowResult | undefined, env: ContextEnv): Partial<ReconcileContext> {
  const desired = ctx.desired ?? desiredState(undefined, true).desired;
  const expectations = settleExpectations(ctx.expectations, observed, env.now, env.options.expectationsTtlMs);
  let history: ReadonlyMap<string, SlotHistory> = desired.deleting
    ? ctx.history
    : absorbLeftovers(ctx.history, observed, desired.templateHash, counting(ctx, env));
  const successes = ctx.successes.templateHash === desired.templateHash ? ctx.successes : { templateHash: desired.templateHash, count: 0 };
  const plan = planWork({
    desired,
    observed,
    expectations,
    history,
    successfulRestores: successes.count,
    engineInFlight: env.engine.inFlight,
    engineLimit: env.engine.concurrencyLimit,
    canary: ctx.canary,
  });
  if (plan.forget.length > 0) {
    const pruned = new Map(history);
    for (const id of plan.forget) pruned.delete(id);
    history = pruned;
  }
  const next: ReconcileContext = { ...ctx, observed, observeError: undefined, expectations, history, successes, plan };
  const decision = decide(next, plan, window);
  return {
    observed,
    diedSinceList: [],
    observeError: undefined,
    expectations,
    history,
    successes,
    plan,
    decision,
    failedRounds: decision.kind === 'converged' ? 0 : ctx.failedRounds,
  };
}

/**
 * The plan while a window is open: from the last observation plus what the window did since
 * (started replicas are in `observed`, its creates in flight pending, its removals hidden).
 */
export function planInWindow(ctx: ReconcileContext, w: WindowState, env: ContextEnv): Plan {
  const desired = ctx.desired!;
  return planWork({
    desired,
    observed: ctx.observed,
    expectations: {
      creates: [
        ...ctx.expectations.creates,
        ...w.inFlight.map((c) => ({ replicaId: c.replicaId, templateHash: w.templateHash, containerId: '', since: w.startedAt })),
      ],
      removes: [...ctx.expectations.removes, ...w.removing.map((r) => ({ replicaId: r.replicaId, containerId: r.containerId, since: w.startedAt }))],
    },
    history: ctx.history,
    successfulRestores: ctx.successes.templateHash === desired.templateHash ? ctx.successes.count : 0,
    engineInFlight: env.engine.inFlight,
    engineLimit: env.engine.concurrencyLimit,
    canary: false,
    inFlight: w.inFlight.length,
  });
}

function absorbRemoved(ctx: ReconcileContext, w: WindowState, r: RemoveOutcome, env: ContextEnv): Partial<ReconcileContext> {
  const window: WindowState = { ...w, removing: w.removing.filter((x) => x.containerId !== r.containerId), removes: [...w.removes, r] };
  const expectations = r.ok ? expectRemoved(ctx.expectations, [{ replicaId: r.replicaId, containerId: r.containerId, since: env.now }]) : ctx.expectations;
  const next = { ...ctx, window, expectations };
  return { window, expectations, plan: ctx.desired ? planInWindow(next, window, env) : ctx.plan };
}

function absorbCreated(ctx: ReconcileContext, w: WindowState, c: CreateOutcome, env: ContextEnv): Partial<ReconcileContext> {
  const window: WindowState = { ...w, inFlight: w.inFlight.filter((x) => !sameCreate(x, c)), creates: [...w.creates, c] };
  const history = historyAfter(ctx.history, w.templateHash, [c], counting(ctx, env));
  const restored = c.ok && c.mode === 'restore' ? 1 : 0;
  const successes =
    ctx.successes.templateHash === w.templateHash
      ? { templateHash: w.templateHash, count: ctx.successes.count + restored }
      : { templateHash: w.templateHash, count: restored };
  const expectations = c.ok
    ? expectCreated(ctx.expectations, [{ replicaId: c.replicaId, templateHash: w.templateHash, containerId: c.replica.containerId, since: env.now }])
    : ctx.expectations;
  // Only a running replica counts now; one that died at once is judged at the fresh observation.
  const observed = c.ok && c.replica.ready ? withReplica(ctx.observed, c.replica) : ctx.observed;
  const next = { ...ctx, window, history, successes, expectations, observed };
  return { window, history, successes, expectations, observed, plan: ctx.desired ? planInWindow(next, window, env) : ctx.plan };
}

/** One finished create or removal folded into the context (pure). */
export function absorbReport(ctx: ReconcileContext, report: WindowReport, env: ContextEnv): Partial<ReconcileContext> {
  const w = ctx.window;
  if (!w) return {};
  return report.type === 'REMOVED' ? absorbRemoved(ctx, w, report.outcome, env) : absorbCreated(ctx, w, report.outcome, env);
}

export function afterObserveError(ctx: ReconcileContext, error: unknown, env: ContextEnv): Partial<ReconcileContext> {
  const observeError = classifyFailure(error);
  const decision = decide({ ...ctx, observeError }, ctx.plan ?? EMPTY_PLAN, undefined);
  return { observeError, decision, failedRounds: ctx.failedRounds + 1, ...knownDeaths(ctx, env) };
}

/**
 * The list failed (dockerd refuses connections while it shuts down), but its event stream said
 * which replicas died: the plan that status is computed from must not count them as ready. Only
 * for status: they are judged (counted or forgiven) at the next successful list.
 */
function knownDeaths(ctx: ReconcileContext, env: ContextEnv): Pick<ReconcileContext, 'plan'> | undefined {
  if (ctx.diedSinceList.length === 0 || !ctx.plan || !ctx.desired) return undefined;
  const died = new Set(ctx.diedSinceList);
  const observed = ctx.observed.map((r) => (died.has(r.containerId) ? { ...r, state: 'exited' as const, ready: false } : r));
  const plan = planWork({
    desired: ctx.desired,
    observed,
    expectations: ctx.expectations,
    history: ctx.history,
    successfulRestores: ctx.successes.count,
    engineInFlight: env.engine.inFlight,
    engineLimit: env.engine.concurrencyLimit,
    canary: false,
  });
  return { plan };
}

/** The engine's stream: a changed replica asks for a fresh look; an outage is remembered and forgives. */
export function noteEngine(ctx: ReconcileContext, event: Extract<ReconcileEvent, { type: 'ENGINE' }>, options: MachineOptions): Partial<ReconcileContext> {
  if (event.change === 'lost') {
    return {
      engineOutage: { lostAt: event.at, backAt: undefined },
      history: forgiveBefore(ctx.history, event.at, options.outageLookbackMs),
    };
  }
  if (event.change === 'resumed') {
    return { reobserve: true, engineOutage: { lostAt: ctx.engineOutage?.lostAt ?? event.at, backAt: event.at } };
  }
  return { reobserve: true, ...(event.died ? { diedSinceList: [...ctx.diedSinceList, event.died] } : {}) };
}

/** Degraded on entry: keep probe bookkeeping when the reason is unchanged. */
export function enterDegraded(ctx: ReconcileContext, now: number): Partial<ReconcileContext> {
  const d = ctx.decision;
  if (d?.kind !== 'degraded') return {};
  const same = ctx.degraded?.reason === d.reason;
  return {
    canary: false,
    degraded: {
      reason: d.reason,
      message: d.message,
      probe: d.probe,
      generation: ctx.ref?.generation ?? 0,
      since: same ? ctx.degraded!.since : now,
      probes: same ? ctx.degraded!.probes : 0,
      lastProbeAt: same ? ctx.degraded!.lastProbeAt : now,
    },
    // The next look at a missing/forbidden source must ask the engine again.
    sourceVerifiedFor: isSourceProblem(d.reason) ? undefined : ctx.sourceVerifiedFor,
  };
}

/** A probe out of Degraded starts: one canary restore (or source check), counted for its delay. */
export function startProbe(ctx: ReconcileContext, now: number): Partial<ReconcileContext> {
  return {
    canary: true,
    degraded: ctx.degraded ? { ...ctx.degraded, probes: ctx.degraded.probes + 1, lastProbeAt: now } : undefined,
  };
}

/** The restore window the plan opens: its spec, and the plan's creates and removes in flight. */
export function openWindow(ctx: ReconcileContext, node: string, now: number): Pick<ReconcileContext, 'windowCount' | 'window'> {
  const spec = ctx.resource!.spec;
  const plan = ctx.plan!;
  const number = ctx.windowCount + 1;
  const window: WindowState = {
    number,
    probe: ctx.canary,
    ref: ctx.ref!,
    node,
    templateHash: ctx.desired!.templateHash,
    template: spec.template,
    checkpoint: spec.checkpoint,
    timeoutMs: spec.restore.timeoutSeconds * 1000,
    startedAt: now,
    inFlight: plan.creates,
    removing: plan.removes,
    creates: [],
    removes: [],
    draining: undefined,
    peak: plan.creates.length,
  };
  return { windowCount: number, window };
}

/** The drained window closes into its result; a failed round grows the backoff, a clean one resets it. */
export function closeWindow(ctx: ReconcileContext, now: number): Partial<ReconcileContext> {
  const w = ctx.window!;
  const result: WindowResult = {
    number: w.number,
    templateHash: w.templateHash,
    probe: w.probe,
    creates: w.creates,
    removes: w.removes,
    seconds: (now - w.startedAt) / 1000,
  };
  return { lastWindow: result, window: undefined, canary: false, failedRounds: windowFailure(w) ? ctx.failedRounds + 1 : 0 };
}
