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
//
// This file is the chart and its wiring. What the actions compute is in context.ts, what the
// machine decides in decide.ts, what it reports in status.ts, what it says in wording.ts, and how
// long each rest waits in delays.ts; a resting state's `meta` names its outcome and its delay.

import { assign, type ActorRefFrom, type SnapshotFrom } from 'xstate';
import type { ReconcileOutcome } from '../ports.js';
import { afterObservation, afterObserveError, initialContext, type ContextEnv } from './context.js';
import { prepareFailed, sourceKey } from './decide.js';
import { delayMs } from './delays.js';
import { setupReconcile, type StateMeta } from './setup.js';
import type { Decision, MachineDeps } from './types.js';
import { errorText } from './wording.js';

export { initialContext } from './context.js';

const decisionIs = (kind: Decision['kind']) => ({ type: 'decisionIs', params: { kind } }) as const;

/** While busy (observing, preparing, verifying): remember what came in, act on it after. */
const BUSY = {
  SPEC: { actions: 'takeResource' },
  RESYNC: { actions: 'takeResource' },
  GONE: { actions: 'markGone' },
  STOP: { actions: 'requestStop' },
} as const;

/** While resting: a new spec or the object gone looks again; a resync only updates the spec; STOP ends. */
const RESTING = {
  SPEC: { target: 'observing', actions: 'takeResource' },
  RESYNC: { actions: 'takeResource' },
  GONE: { target: 'observing', actions: 'markGone' },
  STOP: { target: 'stopped' },
} as const;

/** A resting state that waits for nothing in particular looks again at a resync (a replica may have died since). */
const RESYNC_LOOKS = { RESYNC: { target: 'observing', actions: 'takeResource' } } as const;

/**
 * The machine definition. The runner creates it ONCE and starts every resource's actor from it: it
 * closes over reconciler-wide deps only; what belongs to one resource is in that actor's context,
 * and what one window started is owned by that window's executor (actors.ts).
 */
export function createReconcileMachine(deps: MachineDeps) {
  const { logger, engine } = deps.ports;
  const env = (): ContextEnv => ({ now: deps.clock.now(), options: deps.options, engine });
  /** A deletion step failed: say what (the retry waits longer each time). */
  const warnRetry = (step: string, key: string, error: unknown): void => logger.warn(`${step} failed; will retry`, { key, error: errorText(error) });

  return setupReconcile(deps).createMachine({
    id: 'crs',
    context: ({ input }) => initialContext(input),
    initial: 'idle',
    // States that do not say otherwise only remember an engine event (busy ones look again before resting).
    on: { ENGINE: { actions: 'noteEngine' } },
    states: {
      idle: {
        on: { ...RESTING, ...RESYNC_LOOKS, GONE: { target: 'deleted' } },
      },
      observing: {
        entry: 'clearReobserve',
        invoke: {
          src: 'observe',
          input: ({ context }) => ({ uid: context.ref?.uid ?? '' }),
          onDone: {
            target: 'planning',
            actions: [assign(({ context, event }) => afterObservation(context, event.output, undefined, env())), 'settleDegraded'],
          },
          onError: { target: 'planning', actions: assign(({ context, event }) => afterObserveError(context, event.error, env())) },
        },
        on: BUSY,
      },
      planning: {
        always: [
          { guard: decisionIs('stop'), target: 'stopped' },
          { guard: decisionIs('delete'), target: 'deleting' },
          { guard: decisionIs('paused'), target: 'paused' },
          { guard: decisionIs('nodeUnknown'), target: 'nodeUnknown' },
          { guard: decisionIs('degraded'), target: 'degraded' },
          { guard: decisionIs('backoff'), target: 'backingOff' },
          { guard: 'mustReobserve', target: 'observing' },
          { guard: decisionIs('converged'), target: 'converged' },
          { guard: decisionIs('waiting'), target: 'waiting' },
          { guard: decisionIs('prepare'), target: 'preparing' },
          { guard: decisionIs('restore'), target: 'restoring' },
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
          onError: { target: 'planning', actions: assign(({ context, event }) => prepareFailed(context, event.error)) },
        },
        on: BUSY,
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
                decision: { kind: 'backoff', reason: 'Unknown', message: errorText(event.error) } as Decision,
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
            actions: [assign(({ context, event }) => afterObservation(context, event.output, context.lastWindow, env())), 'settleDegraded'],
          },
          onError: { target: 'planning', actions: assign(({ context, event }) => afterObserveError(context, event.error, env())) },
        },
        on: BUSY,
      },
      converged: {
        tags: ['resting'],
        meta: { outcome: 'converged' },
        entry: [{ type: 'report', params: { phase: 'converged' } }, 'noteConverged'],
        on: {
          ...RESTING,
          ...RESYNC_LOOKS,
          ENGINE: [{ guard: 'engineAnswers', target: 'observing', actions: 'noteEngine' }, { actions: 'noteEngine' }],
        },
      },
      waiting: {
        tags: ['resting'],
        meta: { outcome: 'waiting', delay: 'waitingDelay' },
        entry: { type: 'report', params: { phase: 'waiting' } },
        after: { waitingDelay: { target: 'observing' } },
        on: { ...RESTING, ENGINE: [{ guard: 'engineAnswers', target: 'observing', actions: 'noteEngine' }, { actions: 'noteEngine' }] },
      },
      backingOff: {
        tags: ['resting'],
        meta: { outcome: 'backingOff', delay: 'retryDelay' },
        entry: { type: 'report', params: { phase: 'backingOff' } },
        after: { retryDelay: { target: 'observing' } },
        // The timer decides when to retry; a resync must not cut a backoff short. The engine coming
        // back does: a backoff after EngineUnavailable (up to 60 s) has nothing left to wait for.
        on: { ...RESTING, ENGINE: [{ guard: 'engineResumed', target: 'observing', actions: 'noteEngine' }, { actions: 'noteEngine' }] },
      },
      degraded: {
        tags: ['resting'],
        meta: { outcome: 'degraded', delay: 'probeDelay' },
        entry: ['enterDegraded', 'announceDegraded', { type: 'report', params: { phase: 'degraded' } }],
        after: { probeDelay: { guard: 'canProbe', target: 'observing', actions: 'startProbe' } },
        on: {
          ...RESTING,
          RESYNC: [{ guard: 'probeDue', target: 'observing', actions: ['takeResource', 'startProbe'] }, { actions: 'takeResource' }],
        },
      },
      paused: {
        tags: ['resting'],
        meta: { outcome: 'paused' },
        entry: { type: 'report', params: { phase: 'paused' } },
        on: RESTING,
      },
      nodeUnknown: {
        tags: ['resting'],
        // Holding for a missing Node is, like paused, a deliberate rest that changes nothing.
        meta: { outcome: 'paused' },
        entry: ['announceNodeUnknown', { type: 'report', params: { phase: 'nodeUnknown' } }],
        // The kube layer re-queues every resource when the Node comes back: a resync looks again.
        on: { ...RESTING, ...RESYNC_LOOKS },
      },
      deleting: {
        // Deleting rests only while it waits to retry: backing off, as far as the runner can tell.
        meta: { outcome: 'backingOff' },
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
                actions: ['countDeleteFailure', ({ context, event }) => warnRetry('removing containers', context.key, event.error)],
              },
            },
          },
          retryWait: {
            tags: ['resting'],
            meta: { delay: 'deleteRetryDelay' },
            after: { deleteRetryDelay: { target: 'removing' } },
          },
          releasing: {
            // An object already gone from the API has no finalizer left to release.
            always: { guard: 'isGone', target: '#crs.deleted' },
            invoke: {
              src: 'release',
              input: ({ context }) => ({ ref: context.ref! }),
              onDone: { target: '#crs.deleted' },
              onError: {
                target: 'releaseWait',
                actions: ['countDeleteFailure', ({ context, event }) => warnRetry('releasing the finalizer', context.key, event.error)],
              },
            },
          },
          releaseWait: {
            tags: ['resting'],
            meta: { delay: 'deleteRetryDelay' },
            after: { deleteRetryDelay: { target: 'releasing' } },
          },
        },
        // The finalizer stays on STOP: the next agent run finishes the deletion.
        on: { ...BUSY, STOP: { target: 'stopped' } },
      },
      deleted: { type: 'final', tags: ['resting'], meta: { outcome: 'deleted' } },
      stopped: { type: 'final', tags: ['resting'], meta: { outcome: 'stopped' } },
    },
  });
}

type ReconcileMachine = ReturnType<typeof createReconcileMachine>;
export type ReconcileActor = ActorRefFrom<ReconcileMachine>;
export type ReconcileSnapshot = SnapshotFrom<ReconcileMachine>;

/** A short name of the snapshot's state, e.g. "restoring" or "deleting.retryWait" (for logs). */
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

/** The meta of the snapshot's states, parent first, so a child's fields win. */
function metaOf(snapshot: ReconcileSnapshot): StateMeta {
  return Object.assign({}, ...Object.values(snapshot.getMeta())) as StateMeta;
}

/** The outcome a reconcile call reports for a resting snapshot (its state's meta; 'error' for any other). */
export function outcomeOf(snapshot: ReconcileSnapshot): ReconcileOutcome {
  if (snapshot.status === 'error') return 'error';
  return metaOf(snapshot).outcome ?? 'error';
}

/** When the resting snapshot's own timer looks again (the runner's requeue hint), if it has one that acts. */
export function restingDelayMs(snapshot: ReconcileSnapshot, options: MachineDeps['options']): number | undefined {
  const name = metaOf(snapshot).delay;
  return name === undefined ? undefined : delayMs(name, snapshot.context, options);
}
