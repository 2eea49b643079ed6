// The machine's implementations: the actions, guards and delays its chart (machine.ts) names.
// Actions compute through the pure helpers (context.ts, decide.ts, status.ts, wording.ts) and only
// wire their results to the ports: Events, logs, metrics, status.

import { assign, enqueueActions, setup } from 'xstate';
import type { ReconcileOutcome } from '../ports.js';
import { concurrencyBound, type PlannedCreate } from '../planner.js';
import { replicaCounts } from '../status.js';
import { createActors, type CancelCreates } from './actors.js';
import * as change from './context.js';
import { mustReobserve, probeDue, unwantedCreates, windowStep } from './decide.js';
import { delayMs, type DelayName } from './delays.js';
import type { ReconcileEvent } from './events.js';
import { statusToReport, type Phase } from './status.js';
import type { Decision, MachineDeps, MachineInput, ReconcileContext, WindowReport } from './types.js';
import * as say from './wording.js';

/** What a state tells the runner: the outcome it reports when at rest, and the timer it waits on (a child's meta adds to its parent's). */
export interface StateMeta {
  outcome?: Exclude<ReconcileOutcome, 'error'>;
  delay?: DelayName;
}

export function setupReconcile(deps: MachineDeps) {
  const { ports, node, clock, options } = deps;
  const { logger, events, engine } = ports;
  const now = (): number => clock.now();
  const env = (): change.ContextEnv => ({ now: now(), options, engine });
  const record = (ref: NonNullable<ReconcileContext['ref']>, words: readonly say.EventWords[]): void => {
    for (const w of words) events.record(ref, w.type, w.reason, w.message);
  };
  const announceFallbacks = (ctx: ReconcileContext, creates: readonly PlannedCreate[]): void => {
    if (ctx.ref) record(ctx.ref, say.fallbackEvents(ctx.history, creates));
  };
  // undefined only for a Degraded without a probe, whose canProbe guard refuses the timer anyway.
  const timer =
    (name: DelayName) =>
    ({ context }: { context: ReconcileContext }): number =>
      delayMs(name, context, options) ?? 0;

  return setup({
    types: {} as { context: ReconcileContext; events: ReconcileEvent; input: MachineInput; tags: 'resting'; meta: StateMeta },
    actors: createActors(deps),
    actions: {
      takeResource: assign(({ context, event }) =>
        event.type === 'SPEC' || event.type === 'RESYNC' ? change.applyResource(context, event.resource, now(), deps) : {},
      ),
      markGone: assign(({ context }) => change.markGone(context)),
      requestStop: assign({ stopRequested: true }),
      countDeleteFailure: assign(({ context }) => ({ deleteFailures: context.deleteFailures + 1 })),
      noteEngine: assign(({ context, event }) => (event.type === 'ENGINE' ? change.noteEngine(context, event, options) : {})),
      clearReobserve: assign({ reobserve: false }),
      /** A scale-down mid-window: cancel the restores no longer wanted (queued ones leave at once). */
      cancelUnwanted: enqueueActions(({ context, enqueue }) => {
        const unwanted = unwantedCreates(context);
        if (unwanted.length === 0) return;
        const cancel: CancelCreates = { type: 'CANCEL', slots: unwanted, reason: say.unwantedReason(context.desired?.replicas ?? 0) };
        enqueue.sendTo('window', cancel);
        enqueue(() => logger.info('cancelled restores no longer wanted', { key: context.key, replicas: context.desired?.replicas, slots: unwanted }));
      }),
      enterDegraded: assign(({ context }) => change.enterDegraded(context, now())),
      announceDegraded: enqueueActions(({ context, enqueue }) => {
        const d = context.degraded;
        if (!d || !context.ref || context.announcedDegraded === d.reason) return;
        const ref = context.ref;
        enqueue(() => record(ref, [say.degradedEvent(d)]));
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
          enqueue(() => record(ref, [say.recoveredEvent(was)]));
          enqueue(() => logger.info('recovered', { key: context.key, was }));
        }
        enqueue.assign({ degraded: undefined, announcedDegraded: undefined });
      }),
      startProbe: assign(({ context }) => change.startProbe(context, now())),
      openWindow: assign(({ context }) => change.openWindow(context, node, now())),
      announceWindow: ({ context }) => {
        const w = context.window;
        if (!w) return;
        const bound = context.desired ? concurrencyBound(context.desired) : 1;
        record(w.ref, [say.windowOpenedEvent(w, context.plan?.summary.desired ?? 0, bound)]);
        announceFallbacks(context, w.inFlight);
        logger.info('window opened', say.windowOpenedLog(context, w));
      },
      absorbReport: assign(({ context, event }) => change.absorbReport(context, event as unknown as WindowReport, env())),
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
        const plan = change.planInWindow(context, w, env());
        if (plan.creates.length === 0 && plan.removes.length === 0) return;
        const inFlight = [...w.inFlight, ...plan.creates];
        enqueue.assign({ plan, window: { ...w, inFlight, removing: [...w.removing, ...plan.removes], peak: Math.max(w.peak, inFlight.length) } });
        enqueue.sendTo('window', { type: 'START', creates: plan.creates, removes: plan.removes });
        enqueue(() => {
          announceFallbacks(context, plan.creates);
          logger.info('restores started', say.refillLog(context.key, w, plan, inFlight.length, plan.window));
        });
      }),
      closeWindow: assign(({ context }) => change.closeWindow(context, now())),
      announceWindowResult: ({ context }) => {
        const result = context.lastWindow;
        if (!context.ref || !result) return;
        record(context.ref, say.windowClosedEvents(result));
        logger.info('window closed', say.windowClosedLog(context.key, result));
      },
      report: enqueueActions(({ context, enqueue }, params: { phase: Phase }) => {
        const bootstrap = context.resource?.spec.checkpoint.bootstrap && context.ref ? engine.bootstrapState?.(context.ref.uid) : undefined;
        const next = statusToReport(context, params.phase, { node, retryMs: delayMs('retryDelay', context, options), now: now(), bootstrap });
        const { ref, plan } = context;
        if (!next || !ref || !plan) return;
        enqueue.assign({ lastStatus: next.status });
        enqueue(() => {
          ports.metrics?.replicaCounts(ref, node, replicaCounts(plan.summary, next.restoringNow));
          ports.status
            .report(ref, next.status)
            .catch((error: unknown) => logger.warn('status report failed', { key: context.key, error: say.errorText(error) }));
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
              void engine
                .reclaimBootstrap?.(ref.uid, templateHash)
                .catch((error: unknown) =>
                  logger.warn('reclaiming old bootstrap checkpoints failed; housekeeping retries', { key: context.key, error: say.errorText(error) }),
                ),
          );
      }),
      /** Once per holding spell (the status already says NodeUnknown on later entries). */
      announceNodeUnknown: ({ context }) => {
        const progressing = context.lastStatus?.conditions?.find((c) => c.type === 'Progressing');
        if (progressing?.reason === 'NodeUnknown') return;
        logger.warn('Node object missing: keeping the replicas as they are until it is back', { key: context.key, replicas: context.plan?.summary.replicas });
      },
    },
    guards: {
      decisionIs: ({ context }, params: { kind: Decision['kind'] }) => context.decision?.kind === params.kind,
      isDeletion: ({ context, event }) =>
        (event.type === 'SPEC' && event.resource.metadata.deletionTimestamp !== undefined) || event.type === 'GONE' || context.gone,
      canProbe: ({ context }) => context.degraded !== undefined && context.degraded.probe !== 'none',
      probeDue: ({ context }) => probeDue(context, now(), options.minProbeIntervalMs),
      isGone: ({ context }) => context.gone,
      windowDrained: ({ context }) => context.window !== undefined && context.window.inFlight.length === 0 && context.window.removing.length === 0,
      mustReobserve: ({ context }) => mustReobserve(context),
      engineAnswers: ({ event }) => event.type === 'ENGINE' && event.change !== 'lost',
      engineResumed: ({ event }) => event.type === 'ENGINE' && event.change === 'resumed',
    },
    delays: {
      retryDelay: timer('retryDelay'),
      probeDelay: timer('probeDelay'),
      waitingDelay: timer('waitingDelay'),
      deleteRetryDelay: timer('deleteRetryDelay'),
    },
  });
}
