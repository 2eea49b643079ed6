// The reconcile machine: one actor per CheckpointReplicaSet on this node.
//
//   idle -> observing -> planning -+-> preparing -> restoring -> verifying -> planning ...
//                                  +-> restoring (one window)
//                                  +-> converged | waiting | backingOff | degraded | paused | nodeUnknown (resting)
//                                  +-> deleting (removing -> releasing) -> deleted             (final)
//                                  +-> stopped                                                 (final)
//
// `restoring` is a pipelined window: it starts what the plan allows, and each time a restore or a
// removal finishes it absorbs the result (status and metrics see each replica as it gets ready),
// asks windowStep (decide.ts) whether to refill, and re-plans what to start from the same pure
// planner. A failure, a new spec or shutdown stops new starts; once nothing is in flight the window
// closes and a fresh observation (verifying) acts on its result once. A new spec or a resync
// arriving while busy is stored in the context; a scale-down mid-window cancels the restores it
// no longer wants (cancelUnwanted). Deletion (or the object vanishing) leaves `restoring` at once,
// which stops the window's executor and aborts everything it started. ENGINE events (the Docker event
// stream) make a resting actor look again at once, and a busy one look again before it rests.
// A missing Node object (nodeSelector unknown) rests in `nodeUnknown`, changing nothing. Every
// resting state has a way out that is either an event or a bounded, growing delay, so nothing loops
// hot: backingOff (1 s doubling to 60 s), degraded (probes 30 s doubling to
// 10 min; a RESYNC may trigger a cheap source probe, at most one per 30 s), waiting (a fixed recheck).

import { assign, enqueueActions, setup, type ActorRefFrom, type SnapshotFrom } from 'xstate';
import type { CheckpointReplicaSet } from '../../api/types.js';
import { TRANSIENT_REASONS, type Replica } from '../../engine/types.js';
import { backoffDelay } from '../backoff.js';
import { desiredState, refOf } from '../desired.js';
import { PERMANENT_NOW, SOURCE_REASONS, classifyFailure, type ClassifiedFailure } from '../errors.js';
import { expectCreated, expectRemoved, settleExpectations } from '../expectations.js';
import { countFailure, forgiveBefore, type FailureCounting } from '../forgiveness.js';
import { absorbLeftovers, concurrencyBound, isLeftover, plan as planWork, type Plan, type PlannedCreate, type SlotHistory } from '../planner.js';
import { compareSlotIds } from '../slots.js';
import type { ReconcileOutcome } from '../ports.js';
import { computeNodeStatus, replicaCounts, sameNodeStatus, type Progress } from '../status.js';
import { PrepareFailure, createActors, type CreateControllers } from './actors.js';
import { decide, sourceKey, windowStep } from './decide.js';
import type { ReconcileEvent } from './events.js';
import type { CreateOutcome, Decision, MachineDeps, MachineInput, ReconcileContext, RemoveOutcome, WindowReport, WindowResult, WindowState } from './types.js';

type Phase = 'restoring' | 'converged' | 'waiting' | 'backingOff' | 'degraded' | 'paused' | 'nodeUnknown';

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
function applyResource(
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

/** Failures the engine caused are not the checkpoint's: an unreachable engine, or an aborted restore. */
const NOT_THE_RESTORES_FAULT: ReadonlySet<string> = new Set(['Aborted', 'EngineUnavailable']);

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
    } else if (NOT_THE_RESTORES_FAULT.has(c.failure.reason)) {
      next.set(c.replicaId, base);
    } else {
      const permanent = PERMANENT_NOW.has(c.failure.reason);
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

function progressFor(phase: Phase, ctx: ReconcileContext, retryMs: number): Progress {
  const summary = ctx.plan?.summary;
  switch (phase) {
    case 'restoring': {
      const w = ctx.window;
      const creates = w?.inFlight.length ?? 0;
      const removes = w?.removing.length ?? 0;
      const reason = (summary?.outdated ?? 0) > 0 ? 'RollingUpdate' : creates > 0 || (w?.creates.length ?? 0) > 0 ? 'Restoring' : 'ScalingDown';
      return { status: 'True', reason, message: `restoring ${creates}, removing ${removes} (window of ${ctx.plan?.window ?? 1})` };
    }
    case 'converged':
      return { status: 'False', reason: 'Converged', message: `${summary?.ready ?? 0} replica(s) ready, nothing to do` };
    case 'waiting':
      return {
        status: 'True',
        reason: 'WaitingForReplicas',
        message: `${summary?.notReady ?? 0} replica(s) not ready, ${summary?.pending ?? 0} created but not visible yet`,
      };
    case 'backingOff': {
      const d = ctx.decision?.kind === 'backoff' ? ctx.decision : undefined;
      return {
        status: 'True',
        reason: 'BackingOff',
        message: `retrying in ${Math.round(retryMs / 1000)}s after ${d?.reason ?? 'a failure'}: ${d?.message ?? ''}`,
      };
    }
    case 'degraded':
      return { status: 'False', reason: 'Stalled', message: `stopped until the cause is fixed: ${ctx.degraded?.reason ?? ''}` };
    case 'paused':
      return { status: 'False', reason: 'Paused', message: 'spec.paused is true: no changes are made' };
    case 'nodeUnknown':
      return {
        status: 'False',
        reason: 'NodeUnknown',
        message: "this agent's Node object is missing, so spec.nodeSelector cannot be judged: replicas are kept as they are until it is back",
      };
  }
}

/**
 * The window's creates in flight that the latest spec no longer wants: with `live` current replicas
 * (observed, or started by this window), only replicas - live more are still needed (lowest slot ids kept).
 */
function unwantedCreates(ctx: Pick<ReconcileContext, 'window' | 'desired' | 'observed' | 'expectations'>): string[] {
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

export function createReconcileMachine(deps: MachineDeps) {
  const { ports, node, clock, options } = deps;
  const createControllers: CreateControllers = new Map();
  const { logger, events, engine } = ports;
  const now = (): number => clock.now();
  const retryDelay = (ctx: ReconcileContext): number => backoffDelay(options.backoff, Math.max(1, ctx.failedRounds));
  const probeDelay = (ctx: ReconcileContext): number => backoffDelay(options.probe, (ctx.degraded?.probes ?? 0) + 1);
  const counting = (ctx: ReconcileContext): FailureCounting => ({
    now: now(),
    provenAfterMs: options.provenAfterMs,
    outage: ctx.engineOutage,
    outageGraceMs: options.outageGraceMs,
  });

  /** Observation -> expectations, history, plan and the decision (all pure). */
  const afterObservation = (ctx: ReconcileContext, observed: Replica[], window: WindowResult | undefined): Partial<ReconcileContext> => {
    const desired = ctx.desired ?? desiredState(undefined, true).desired;
    const expectations = settleExpectations(ctx.expectations, observed, now(), options.expectationsTtlMs);
    let history: ReadonlyMap<string, SlotHistory> = desired.deleting
      ? ctx.history
      : absorbLeftovers(ctx.history, observed, desired.templateHash, counting(ctx));
    const successes = ctx.successes.templateHash === desired.templateHash ? ctx.successes : { templateHash: desired.templateHash, count: 0 };
    const plan = planWork({
      desired,
      observed,
      expectations,
      history,
      successfulRestores: successes.count,
      engineInFlight: engine.inFlight,
      engineLimit: engine.concurrencyLimit,
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
  };

  /**
   * The plan while a window is open: from the last observation plus what the window did since
   * (started replicas are in `observed`, its creates in flight pending, its removals hidden).
   */
  const planInWindow = (ctx: ReconcileContext, w: WindowState): Plan => {
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
      engineInFlight: engine.inFlight,
      engineLimit: engine.concurrencyLimit,
      canary: false,
      inFlight: w.inFlight.length,
    });
  };

  /** One finished create or removal folded into the context (pure). */
  const absorbReport = (ctx: ReconcileContext, report: WindowReport): Partial<ReconcileContext> => {
    const w = ctx.window;
    if (!w) return {};
    const at = now();
    if (report.type === 'REMOVED') {
      const r: RemoveOutcome = report.outcome;
      const window: WindowState = { ...w, removing: w.removing.filter((x) => x.containerId !== r.containerId), removes: [...w.removes, r] };
      const expectations = r.ok ? expectRemoved(ctx.expectations, [{ replicaId: r.replicaId, containerId: r.containerId, since: at }]) : ctx.expectations;
      const next = { ...ctx, window, expectations };
      return { window, expectations, plan: ctx.desired ? planInWindow(next, window) : ctx.plan };
    }
    const c: CreateOutcome = report.outcome;
    const window: WindowState = { ...w, inFlight: w.inFlight.filter((x) => !sameCreate(x, c)), creates: [...w.creates, c] };
    const history = historyAfter(ctx.history, w.templateHash, [c], counting(ctx));
    const restored = c.ok && c.mode === 'restore' ? 1 : 0;
    const successes =
      ctx.successes.templateHash === w.templateHash
        ? { templateHash: w.templateHash, count: ctx.successes.count + restored }
        : { templateHash: w.templateHash, count: restored };
    const expectations = c.ok
      ? expectCreated(ctx.expectations, [{ replicaId: c.replicaId, templateHash: w.templateHash, containerId: c.replica.containerId, since: at }])
      : ctx.expectations;
    // Only a running replica counts now; one that died at once is judged at the fresh observation.
    const observed = c.ok && c.replica.ready ? withReplica(ctx.observed, c.replica) : ctx.observed;
    const next = { ...ctx, window, history, successes, expectations, observed };
    return { window, history, successes, expectations, observed, plan: ctx.desired ? planInWindow(next, window) : ctx.plan };
  };

  const afterObserveError = (ctx: ReconcileContext, error: unknown): Partial<ReconcileContext> => {
    const observeError = classifyFailure(error);
    const decision = decide({ ...ctx, observeError }, ctx.plan ?? EMPTY_PLAN, undefined);
    return { observeError, decision, failedRounds: ctx.failedRounds + 1, ...knownDeaths(ctx) };
  };

  /**
   * The list failed (dockerd refuses connections while it shuts down), but its event stream said
   * which replicas died: the plan that status is computed from must not count them as ready. Only
   * for status: they are judged (counted or forgiven) at the next successful list.
   */
  const knownDeaths = (ctx: ReconcileContext): Pick<ReconcileContext, 'plan'> | undefined => {
    if (ctx.diedSinceList.length === 0 || !ctx.plan || !ctx.desired) return undefined;
    const died = new Set(ctx.diedSinceList);
    const observed = ctx.observed.map((r) => (died.has(r.containerId) ? { ...r, state: 'exited' as const, ready: false } : r));
    const plan = planWork({
      desired: ctx.desired,
      observed,
      expectations: ctx.expectations,
      history: ctx.history,
      successfulRestores: ctx.successes.count,
      engineInFlight: engine.inFlight,
      engineLimit: engine.concurrencyLimit,
      canary: false,
    });
    return { plan };
  };

  /** A Warning per slot that falls back to a cold start (they are few: slots that spent their attempts). */
  const announceFallbacks = (ctx: ReconcileContext, creates: readonly PlannedCreate[]): void => {
    if (!ctx.ref) return;
    for (const c of creates) {
      if (c.mode !== 'cold') continue;
      const last = ctx.history.get(c.replicaId)?.lastFailure;
      events.record(
        ctx.ref,
        'Warning',
        'FallbackUsed',
        `replica ${c.replicaId}: restore attempts spent (last: ${last ? `${last.reason}: ${last.message}` : 'unknown'}); starting it cold`,
      );
    }
  };
  const concurrencyBoundOf = (ctx: ReconcileContext): number => (ctx.desired ? concurrencyBound(ctx.desired) : 1);

  return setup({
    types: {} as { context: ReconcileContext; events: ReconcileEvent; input: MachineInput; tags: 'resting' },
    actors: createActors(deps, createControllers),
    actions: {
      takeResource: assign(({ context, event }) =>
        event.type === 'SPEC' || event.type === 'RESYNC' ? applyResource(context, event.resource, now(), deps) : {},
      ),
      markGone: assign(({ context }) => ({
        gone: true,
        desired: context.desired ? { ...context.desired, deleting: true } : desiredState(undefined, true).desired,
      })),
      requestStop: assign({ stopRequested: true }),
      /** The engine's stream: a changed replica asks for a fresh look; an outage is remembered and forgives. */
      noteEngine: assign(({ context, event }) => {
        if (event.type !== 'ENGINE') return {};
        if (event.change === 'lost') {
          return {
            engineOutage: { lostAt: event.at, backAt: undefined },
            history: forgiveBefore(context.history, event.at, options.outageLookbackMs),
          };
        }
        if (event.change === 'resumed') {
          return { reobserve: true, engineOutage: { lostAt: context.engineOutage?.lostAt ?? event.at, backAt: event.at } };
        }
        return { reobserve: true, ...(event.died ? { diedSinceList: [...context.diedSinceList, event.died] } : {}) };
      }),
      clearReobserve: assign({ reobserve: false }),
      /** A scale-down mid-window: cancel the restores no longer wanted (queued ones leave at once). */
      cancelUnwanted: ({ context }) => {
        const unwanted = unwantedCreates(context).filter((id) => createControllers.has(id));
        if (unwanted.length === 0) return;
        const reason = new Error(`no longer wanted: spec.replicas is now ${context.desired?.replicas ?? 0}`);
        for (const id of unwanted) createControllers.get(id)?.abort(reason);
        logger.info('cancelled restores no longer wanted', { key: context.key, replicas: context.desired?.replicas, slots: unwanted });
      },

      /** Degraded on entry: keep probe bookkeeping when the reason is unchanged. */
      enterDegraded: assign(({ context }) => {
        const d = context.decision;
        if (d?.kind !== 'degraded') return {};
        const same = context.degraded?.reason === d.reason;
        const at = now();
        return {
          canary: false,
          degraded: {
            reason: d.reason,
            message: d.message,
            probe: d.probe,
            generation: context.ref?.generation ?? 0,
            since: same ? context.degraded!.since : at,
            probes: same ? context.degraded!.probes : 0,
            lastProbeAt: same ? context.degraded!.lastProbeAt : at,
          },
          // The next look at a missing/forbidden source must ask the engine again.
          sourceVerifiedFor: SOURCE_REASONS.has(d.reason as never) ? undefined : context.sourceVerifiedFor,
        };
      }),
      announceDegraded: enqueueActions(({ context, enqueue }) => {
        const d = context.degraded;
        if (!d || !context.ref || context.announcedDegraded === d.reason) return;
        const ref = context.ref;
        enqueue(() => events.record(ref, 'Warning', 'Degraded', `${d.reason}: ${d.message}`));
        enqueue(() => logger.warn('degraded', { key: context.key, reason: d.reason, message: d.message }));
        enqueue.assign({ announcedDegraded: d.reason });
      }),
      /** After a decision that makes progress, a Degraded resource has recovered. */
      settleDegraded: enqueueActions(({ context, enqueue }) => {
        const kind = context.decision?.kind;
        if (kind === 'degraded' || kind === 'backoff' || context.canary) return;
        // A probe whose replica started and then died is no recovery: every slot must be usable.
        if ((context.plan?.summary.failedSlots.length ?? 0) > 0) return;
        if (!context.degraded && context.announcedDegraded === undefined) return;
        const ref = context.ref;
        const was = context.degraded?.reason ?? context.announcedDegraded;
        if (ref && context.announcedDegraded !== undefined && kind !== 'delete' && kind !== 'stop') {
          enqueue(() => events.record(ref, 'Normal', 'Recovered', `no longer degraded (was ${was})`));
          enqueue(() => logger.info('recovered', { key: context.key, was }));
        }
        enqueue.assign({ degraded: undefined, announcedDegraded: undefined });
      }),
      startProbe: assign(({ context }) => ({
        canary: true,
        degraded: context.degraded ? { ...context.degraded, probes: context.degraded.probes + 1, lastProbeAt: now() } : undefined,
      })),

      openWindow: assign(({ context }) => {
        const spec = context.resource!.spec;
        const plan = context.plan!;
        const number = context.windowCount + 1;
        const window: WindowState = {
          number,
          probe: context.canary,
          ref: context.ref!,
          node,
          templateHash: context.desired!.templateHash,
          template: spec.template,
          checkpoint: spec.checkpoint,
          timeoutMs: spec.restore.timeoutSeconds * 1000,
          startedAt: now(),
          inFlight: plan.creates,
          removing: plan.removes,
          creates: [],
          removes: [],
          draining: undefined,
          peak: plan.creates.length,
        };
        return { windowCount: number, window };
      }),
      announceWindow: ({ context }) => {
        const w = context.window;
        if (!w) return;
        const restores = w.inFlight.filter((c) => c.mode === 'restore').length;
        const cold = w.inFlight.length - restores;
        events.record(
          w.ref,
          'Normal',
          'RestoresStarted',
          `restoring ${context.plan?.summary.desired ?? 0} replica(s), at most ${concurrencyBoundOf(context)} at a time: starting ${restores}` +
            `${cold ? `, cold-starting ${cold}` : ''}, removing ${w.removing.length}` +
            (w.probe ? ' (probe after Degraded)' : ''),
        );
        announceFallbacks(context, w.inFlight);
        logger.info('window opened', {
          key: context.key,
          window: w.number,
          creates: w.inFlight.map((c) => `${c.replicaId}#${c.attempt}${c.mode === 'cold' ? ':cold' : ''}`),
          removes: w.removing.map((r) => `${r.replicaId}:${r.cause}`),
          limit: context.plan?.window,
          probe: w.probe,
        });
      },
      absorbReport: assign(({ context, event }) => absorbReport(context, event as unknown as WindowReport)),
      /** Refill the window from the pure plan, or note (once) why nothing new starts. */
      refill: enqueueActions(({ context, enqueue }) => {
        const w = context.window;
        if (!w) return;
        const step = windowStep(context);
        if (step.kind === 'drain') {
          if (w.draining) return;
          enqueue.assign({ window: { ...w, draining: step.reason } });
          enqueue(() => logger.info('window draining', { key: context.key, window: w.number, reason: step.reason, inFlight: w.inFlight.length }));
          return;
        }
        const plan = planInWindow(context, w);
        if (plan.creates.length === 0 && plan.removes.length === 0) return;
        const inFlight = [...w.inFlight, ...plan.creates];
        enqueue.assign({ plan, window: { ...w, inFlight, removing: [...w.removing, ...plan.removes], peak: Math.max(w.peak, inFlight.length) } });
        enqueue.sendTo('window', { type: 'START', creates: plan.creates, removes: plan.removes });
        enqueue(() => {
          announceFallbacks(context, plan.creates);
          logger.info('restores started', {
            key: context.key,
            window: w.number,
            creates: plan.creates.map((c) => `${c.replicaId}#${c.attempt}${c.mode === 'cold' ? ':cold' : ''}`),
            removes: plan.removes.map((r) => `${r.replicaId}:${r.cause}`),
            inFlight: inFlight.length,
            limit: plan.window,
          });
        });
      }),
      closeWindow: assign(({ context }) => {
        const w = context.window!;
        const result: WindowResult = {
          number: w.number,
          templateHash: w.templateHash,
          probe: w.probe,
          creates: w.creates,
          removes: w.removes,
          seconds: (now() - w.startedAt) / 1000,
        };
        const transient =
          w.creates.some((c) => !c.ok && c.failure.reason !== 'Aborted') || w.removes.some((r) => !r.ok && TRANSIENT_REASONS.has(r.failure.reason));
        return { lastWindow: result, window: undefined, canary: false, failedRounds: transient ? context.failedRounds + 1 : 0 };
      }),
      announceWindowResult: ({ context }) => {
        const ref = context.ref;
        const result = context.lastWindow;
        if (!ref || !result) return;
        const failed = result.creates.filter((c) => !c.ok && c.failure.reason !== 'Aborted');
        const removeFailed = result.removes.filter((r) => !r.ok);
        const ok = result.creates.filter((c) => c.ok).length;
        events.record(
          ref,
          failed.length + removeFailed.length > 0 ? 'Warning' : 'Normal',
          'RestoresFinished',
          `${ok} started, ${failed.length} failed, ${result.removes.length - removeFailed.length} removed in ${result.seconds.toFixed(1)}s`,
        );
        // One Event per failure, bounded: a window stops new starts at its first failure, so at most
        // what was in flight then (10) fail with it.
        for (const c of failed) {
          if (c.ok) continue;
          events.record(
            ref,
            'Warning',
            'RestoreFailed',
            `replica ${c.replicaId} attempt ${c.attempt}${c.mode === 'cold' ? ' (cold start)' : ''}: ${c.failure.reason}: ${c.failure.message}`,
          );
        }
        for (const r of removeFailed) {
          if (r.ok) continue;
          events.record(ref, 'Warning', 'RemoveFailed', `container ${r.containerId} of replica ${r.replicaId}: ${r.failure.reason}: ${r.failure.message}`);
        }
        logger.info('window closed', {
          key: context.key,
          window: result.number,
          started: ok,
          failed: failed.map((c) => (c.ok ? '' : `${c.replicaId}#${c.attempt}:${c.failure.reason}`)),
          removed: result.removes.length - removeFailed.length,
          seconds: result.seconds,
        });
      },

      report: enqueueActions(({ context, enqueue }, params: { phase: Phase }) => {
        const ref = context.ref;
        const plan = context.plan;
        if (!ref || !plan || !context.desired) return;
        // A node the resource does not select, that holds none of its replicas and never wrote an
        // entry, stays out of status.nodes (a large cluster would otherwise list every node). Once
        // written, the entry is kept truthful (the kube layer owns removing it).
        if (!context.selected && plan.summary.replicas === 0 && !context.degraded && !context.lastStatus) return;
        const restoringNow = params.phase === 'restoring' ? (context.window?.inFlight.length ?? 0) : 0;
        const status = computeNodeStatus({
          node,
          generation: ref.generation,
          summary: plan.summary,
          restoringNow,
          paused: context.desired.paused,
          progress: progressFor(params.phase, context, retryDelay(context)),
          degraded: context.degraded ? { reason: context.degraded.reason, message: context.degraded.message } : undefined,
          bootstrap: context.resource?.spec.checkpoint.bootstrap ? ports.engine.bootstrapState?.(ref.uid) : undefined,
          previous: context.lastStatus,
          now: new Date(now()),
        });
        if (sameNodeStatus(context.lastStatus, status)) return;
        enqueue.assign({ lastStatus: status });
        enqueue(() => {
          ports.metrics?.replicaCounts(ref, node, replicaCounts(plan.summary, restoringNow));
          ports.status
            .report(ref, status)
            .catch((error: unknown) =>
              logger.warn('status report failed', { key: context.key, error: error instanceof Error ? error.message : String(error) }),
            );
        });
      }),
      noteConverged: enqueueActions(({ context, enqueue }) => {
        const ref = context.ref;
        if (!ref || context.convergedGeneration === ref.generation) return;
        const seconds = (now() - context.generationSince.at) / 1000;
        enqueue(() => ports.metrics?.converged(ref, seconds));
        enqueue(() => logger.info('converged', { key: context.key, generation: ref.generation, seconds, replicas: context.plan?.summary.ready }));
        enqueue.assign({ convergedGeneration: ref.generation });
        // The roll is over: no replica of an older template is left, so neither is a use for its
        // checkpoint (also after a switch from bootstrap to another source: then none is kept).
        const templateHash = context.desired?.templateHash;
        if (templateHash)
          enqueue(
            () =>
              void ports.engine
                .reclaimBootstrap?.(ref.uid, templateHash)
                .catch((error: unknown) =>
                  logger.warn('reclaiming old bootstrap checkpoints failed; housekeeping retries', { key: context.key, error: String(error) }),
                ),
          );
      }),
    },
    guards: {
      decisionIs: ({ context }, params: { kind: Decision['kind'] }) => context.decision?.kind === params.kind,
      isDeletion: ({ context, event }) =>
        (event.type === 'SPEC' && event.resource.metadata.deletionTimestamp !== undefined) || event.type === 'GONE' || context.gone,
      canProbe: ({ context }) => context.degraded !== undefined && context.degraded.probe !== 'none',
      // Only a SOURCE probe (one cheap inspect of the source container) may be triggered by a
      // resync; a restore probe costs a restore (and a leaked checkpoint copy in containerd), so it
      // waits for its own exponential timer however often resyncs arrive.
      probeDue: ({ context }) => context.degraded?.probe === 'source' && now() - context.degraded.lastProbeAt >= options.minProbeIntervalMs,
      isGone: ({ context }) => context.gone,
      windowDrained: ({ context }) => context.window !== undefined && context.window.inFlight.length === 0 && context.window.removing.length === 0,
      /** An engine event came in while observing: the plan may rest on a list taken before it. */
      mustReobserve: ({ context }) => context.reobserve && (context.decision?.kind === 'converged' || context.decision?.kind === 'waiting'),
      engineAnswers: ({ event }) => event.type === 'ENGINE' && event.change !== 'lost',
      engineResumed: ({ event }) => event.type === 'ENGINE' && event.change === 'resumed',
    },
    delays: {
      retryDelay: ({ context }) => retryDelay(context),
      probeDelay: ({ context }) => probeDelay(context),
      waitingDelay: () => options.waitingRecheckMs,
      deleteRetryDelay: ({ context }) => backoffDelay(options.backoff, Math.max(1, context.deleteFailures)),
    },
  }).createMachine({
    id: 'crs',
    context: ({ input }) => initialContext(input),
    initial: 'idle',
    // States that do not say otherwise only remember an engine event (busy ones look again before resting).
    on: { ENGINE: { actions: 'noteEngine' } },
    states: {
      idle: {
        on: {
          SPEC: { target: 'observing', actions: 'takeResource' },
          RESYNC: { target: 'observing', actions: 'takeResource' },
          GONE: { target: 'deleted' },
          STOP: { target: 'stopped' },
        },
      },
      observing: {
        entry: 'clearReobserve',
        invoke: {
          src: 'observe',
          input: ({ context }) => ({ uid: context.ref?.uid ?? '' }),
          onDone: { target: 'planning', actions: [assign(({ context, event }) => afterObservation(context, event.output, undefined)), 'settleDegraded'] },
          onError: { target: 'planning', actions: assign(({ context, event }) => afterObserveError(context, event.error)) },
        },
        on: {
          SPEC: { actions: 'takeResource' },
          RESYNC: { actions: 'takeResource' },
          GONE: { actions: 'markGone' },
          STOP: { actions: 'requestStop' },
        },
      },
      planning: {
        always: [
          { guard: { type: 'decisionIs', params: { kind: 'stop' } }, target: 'stopped' },
          { guard: { type: 'decisionIs', params: { kind: 'delete' } }, target: 'deleting' },
          { guard: { type: 'decisionIs', params: { kind: 'paused' } }, target: 'paused' },
          { guard: { type: 'decisionIs', params: { kind: 'nodeUnknown' } }, target: 'nodeUnknown' },
          { guard: { type: 'decisionIs', params: { kind: 'degraded' } }, target: 'degraded' },
          { guard: { type: 'decisionIs', params: { kind: 'backoff' } }, target: 'backingOff' },
          { guard: 'mustReobserve', target: 'observing' },
          { guard: { type: 'decisionIs', params: { kind: 'converged' } }, target: 'converged' },
          { guard: { type: 'decisionIs', params: { kind: 'waiting' } }, target: 'waiting' },
          { guard: { type: 'decisionIs', params: { kind: 'prepare' } }, target: 'preparing' },
          { guard: { type: 'decisionIs', params: { kind: 'restore' } }, target: 'restoring' },
          // No decision can only mean the context was never observed: observe.
          { target: 'observing' },
        ],
      },
      preparing: {
        invoke: {
          src: 'prepare',
          input: ({ context }) => {
            const d = context.decision?.kind === 'prepare' ? context.decision : { checkSource: true, ensureFinalizer: true };
            return { ref: context.ref!, checkpoint: context.resource!.spec.checkpoint, checkSource: d.checkSource, ensureFinalizer: d.ensureFinalizer };
          },
          onDone: {
            target: 'restoring',
            actions: assign(({ context }) => {
              const d = context.decision?.kind === 'prepare' ? context.decision : undefined;
              return {
                finalizerEnsured: context.finalizerEnsured || d?.ensureFinalizer === true,
                sourceVerifiedFor: d?.checkSource ? sourceKey(context) : context.sourceVerifiedFor,
              };
            }),
          },
          onError: {
            target: 'planning',
            actions: assign(({ context, event }) => {
              const step = event.error instanceof PrepareFailure ? event.error.step : 'source';
              const failure: ClassifiedFailure = classifyFailure(event.error instanceof PrepareFailure ? event.error.failure : event.error);
              const permanent = step === 'source' && PERMANENT_NOW.has(failure.reason);
              const decision: Decision = permanent
                ? { kind: 'degraded', reason: failure.reason, message: failure.message, probe: SOURCE_REASONS.has(failure.reason) ? 'source' : 'restore' }
                : {
                    kind: 'backoff',
                    reason: failure.reason,
                    message: `${step === 'finalizer' ? 'adding the finalizer' : 'checking the checkpoint source'}: ${failure.message}`,
                  };
              return { decision, failedRounds: permanent ? context.failedRounds : context.failedRounds + 1 };
            }),
          },
        },
        on: {
          SPEC: { actions: 'takeResource' },
          RESYNC: { actions: 'takeResource' },
          GONE: { actions: 'markGone' },
          STOP: { actions: 'requestStop' },
        },
      },
      restoring: {
        entry: ['openWindow', 'announceWindow', { type: 'report', params: { phase: 'restoring' } }],
        invoke: {
          id: 'window',
          src: 'runWindow',
          input: ({ context }) => ({ ...context.window!, work: { creates: context.window!.inFlight, removes: context.window!.removing } }),
          onError: {
            // The executor catches every engine error per item; only a bug gets here. Back off.
            target: 'backingOff',
            actions: [
              assign(({ context, event }) => ({
                window: undefined,
                failedRounds: context.failedRounds + 1,
                decision: { kind: 'backoff', reason: 'Unknown', message: event.error instanceof Error ? event.error.message : String(event.error) } as Decision,
              })),
              ({ context, event }) => logger.error('restore window failed unexpectedly', { key: context.key, error: String(event.error) }),
            ],
          },
        },
        // Nothing in flight any more: close the window and look again before acting on its result.
        always: { guard: 'windowDrained', target: 'verifying', actions: ['closeWindow', 'announceWindowResult'] },
        on: {
          CREATED: { actions: ['absorbReport', 'refill', { type: 'report', params: { phase: 'restoring' } }] },
          REMOVED: { actions: ['absorbReport', 'refill', { type: 'report', params: { phase: 'restoring' } }] },
          // A container started or died mid-window (a bootstrap replica warming up, for one): the
          // status may have moved without a create finishing.
          ENGINE: { actions: ['noteEngine', { type: 'report', params: { phase: 'restoring' } }] },
          // Deletion stops the window (leaving the state stops its executor, which aborts its work).
          SPEC: [{ guard: 'isDeletion', target: 'observing', actions: 'takeResource' }, { actions: ['takeResource', 'cancelUnwanted', 'refill'] }],
          GONE: { target: 'observing', actions: 'markGone' },
          RESYNC: { actions: 'takeResource' },
          // Shutdown lets what runs finish (the runner aborts it after its grace period).
          STOP: { actions: ['requestStop', 'refill'] },
        },
      },
      verifying: {
        entry: 'clearReobserve',
        invoke: {
          src: 'observe',
          input: ({ context }) => ({ uid: context.ref?.uid ?? '' }),
          onDone: {
            target: 'planning',
            actions: [assign(({ context, event }) => afterObservation(context, event.output, context.lastWindow)), 'settleDegraded'],
          },
          onError: { target: 'planning', actions: assign(({ context, event }) => afterObserveError(context, event.error)) },
        },
        on: {
          SPEC: { actions: 'takeResource' },
          RESYNC: { actions: 'takeResource' },
          GONE: { actions: 'markGone' },
          STOP: { actions: 'requestStop' },
        },
      },
      converged: {
        tags: ['resting'],
        entry: [{ type: 'report', params: { phase: 'converged' } }, 'noteConverged'],
        on: {
          SPEC: { target: 'observing', actions: 'takeResource' },
          // A resync re-observes: a replica may have died since.
          RESYNC: { target: 'observing', actions: 'takeResource' },
          ENGINE: [{ guard: 'engineAnswers', target: 'observing', actions: 'noteEngine' }, { actions: 'noteEngine' }],
          GONE: { target: 'observing', actions: 'markGone' },
          STOP: { target: 'stopped' },
        },
      },
      waiting: {
        tags: ['resting'],
        entry: { type: 'report', params: { phase: 'waiting' } },
        after: { waitingDelay: { target: 'observing' } },
        on: {
          SPEC: { target: 'observing', actions: 'takeResource' },
          RESYNC: { actions: 'takeResource' },
          ENGINE: [{ guard: 'engineAnswers', target: 'observing', actions: 'noteEngine' }, { actions: 'noteEngine' }],
          GONE: { target: 'observing', actions: 'markGone' },
          STOP: { target: 'stopped' },
        },
      },
      backingOff: {
        tags: ['resting'],
        entry: { type: 'report', params: { phase: 'backingOff' } },
        after: { retryDelay: { target: 'observing' } },
        on: {
          SPEC: { target: 'observing', actions: 'takeResource' },
          // The timer decides when to retry; a resync must not cut a backoff short. The engine coming
          // back does: a backoff after EngineUnavailable (up to 60 s) has nothing left to wait for.
          RESYNC: { actions: 'takeResource' },
          ENGINE: [{ guard: 'engineResumed', target: 'observing', actions: 'noteEngine' }, { actions: 'noteEngine' }],
          GONE: { target: 'observing', actions: 'markGone' },
          STOP: { target: 'stopped' },
        },
      },
      degraded: {
        tags: ['resting'],
        entry: ['enterDegraded', 'announceDegraded', { type: 'report', params: { phase: 'degraded' } }],
        after: { probeDelay: { guard: 'canProbe', target: 'observing', actions: 'startProbe' } },
        on: {
          SPEC: { target: 'observing', actions: 'takeResource' },
          RESYNC: [{ guard: 'probeDue', target: 'observing', actions: ['takeResource', 'startProbe'] }, { actions: 'takeResource' }],
          GONE: { target: 'observing', actions: 'markGone' },
          STOP: { target: 'stopped' },
        },
      },
      paused: {
        tags: ['resting'],
        entry: { type: 'report', params: { phase: 'paused' } },
        on: {
          SPEC: { target: 'observing', actions: 'takeResource' },
          RESYNC: { actions: 'takeResource' },
          GONE: { target: 'observing', actions: 'markGone' },
          STOP: { target: 'stopped' },
        },
      },
      nodeUnknown: {
        tags: ['resting'],
        entry: [
          // Once per holding spell (the status already says NodeUnknown on later entries).
          ({ context }) => {
            const progressing = context.lastStatus?.conditions?.find((c) => c.type === 'Progressing');
            if (progressing?.reason === 'NodeUnknown') return;
            logger.warn('Node object missing: keeping the replicas as they are until it is back', {
              key: context.key,
              replicas: context.plan?.summary.replicas,
            });
          },
          { type: 'report', params: { phase: 'nodeUnknown' } },
        ],
        on: {
          SPEC: { target: 'observing', actions: 'takeResource' },
          // The kube layer re-queues every resource when the Node comes back: look again.
          RESYNC: { target: 'observing', actions: 'takeResource' },
          GONE: { target: 'observing', actions: 'markGone' },
          STOP: { target: 'stopped' },
        },
      },
      deleting: {
        initial: 'removing',
        states: {
          removing: {
            invoke: {
              src: 'removeAll',
              input: ({ context }) => ({ uid: context.ref?.uid ?? '' }),
              onDone: {
                target: 'releasing',
                actions: [
                  assign({ deleteFailures: 0 }),
                  ({ context, event }) => logger.info('containers removed', { key: context.key, removed: event.output }),
                ],
              },
              onError: {
                target: 'retryWait',
                actions: [
                  assign(({ context }) => ({ deleteFailures: context.deleteFailures + 1 })),
                  ({ context, event }) =>
                    logger.warn('removing containers failed; will retry', {
                      key: context.key,
                      error: event.error instanceof Error ? event.error.message : String(event.error),
                    }),
                ],
              },
            },
          },
          retryWait: { tags: ['resting'], after: { deleteRetryDelay: { target: 'removing' } } },
          releasing: {
            // An object already gone from the API has no finalizer left to release.
            always: { guard: 'isGone', target: '#crs.deleted' },
            invoke: {
              src: 'release',
              input: ({ context }) => ({ ref: context.ref! }),
              onDone: { target: '#crs.deleted' },
              onError: {
                target: 'releaseWait',
                actions: [
                  assign(({ context }) => ({ deleteFailures: context.deleteFailures + 1 })),
                  ({ context, event }) =>
                    logger.warn('releasing the finalizer failed; will retry', {
                      key: context.key,
                      error: event.error instanceof Error ? event.error.message : String(event.error),
                    }),
                ],
              },
            },
          },
          releaseWait: { tags: ['resting'], after: { deleteRetryDelay: { target: 'releasing' } } },
        },
        on: {
          SPEC: { actions: 'takeResource' },
          RESYNC: { actions: 'takeResource' },
          GONE: { actions: 'markGone' },
          // The finalizer stays: the next agent run finishes the deletion.
          STOP: { target: 'stopped' },
        },
      },
      deleted: { type: 'final', tags: ['resting'] },
      stopped: { type: 'final', tags: ['resting'] },
    },
  });
}

type ReconcileMachine = ReturnType<typeof createReconcileMachine>;
export type ReconcileActor = ActorRefFrom<ReconcileMachine>;
export type ReconcileSnapshot = SnapshotFrom<ReconcileMachine>;

/** A short name of the snapshot's state, e.g. "restoring" or "deleting.retryWait". */
export function stateName(snapshot: ReconcileSnapshot): string {
  const value = snapshot.value;
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([k, v]) => `${k}.${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(',');
}

export function isResting(snapshot: ReconcileSnapshot): boolean {
  return snapshot.status !== 'active' || snapshot.hasTag('resting');
}

/** The outcome a reconcile call reports for a resting snapshot. */
export function outcomeOf(snapshot: ReconcileSnapshot): ReconcileOutcome {
  if (snapshot.status === 'error') return 'error';
  const name = stateName(snapshot);
  if (
    name === 'converged' ||
    name === 'waiting' ||
    name === 'backingOff' ||
    name === 'degraded' ||
    name === 'paused' ||
    name === 'deleted' ||
    name === 'stopped'
  ) {
    return name;
  }
  // Holding for a missing Node is, like paused, a deliberate rest that changes nothing.
  if (name === 'nodeUnknown') return 'paused';
  if (name.startsWith('deleting.')) return 'backingOff';
  return 'error';
}
