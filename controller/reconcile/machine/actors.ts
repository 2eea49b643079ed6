// The machine's actors: the only places it calls the engine and the finalizer port. Each promise
// actor receives the actor's AbortSignal, which xstate aborts when the machine leaves the invoking
// state (deletion mid-window, shutdown after the grace period); the engine then leaves nothing
// half-made. The window's executor is a callback actor: it starts what the machine sends it and
// reports each result back; stopping it (leaving `restoring`) aborts everything it started.

import { fromCallback, fromPromise, type AnyEventObject } from 'xstate';
import type { Replica, ReplicaSpec } from '../../engine/types.js';
import { PrepareFailure, classifyFailure } from '../errors.js';
import { plan as planWork } from '../planner.js';
import type { PlannedCreate, PlannedRemove } from '../planner.js';
import type { ResourceRef } from '../ports.js';
import type { CreateOutcome, MachineDeps, PrepareInput, RemoveOutcome, WindowInput, WindowReport, WindowWork } from './types.js';

/** Sent to the window's executor: abort the creates of these slots (a scale-down no longer wants them). */
export interface CancelCreates {
  type: 'CANCEL';
  slots: string[];
  reason: string;
}

/**
 * The actors of the one machine definition every resource shares: they hold no per-resource state
 * (what one window started lives in that window's executor), only the reconciler-wide deps.
 */
export function createActors(deps: MachineDeps) {
  const { engine, finalizer } = deps.ports;
  const tracked = inFlightTracker(deps);
  const observe = fromPromise<Replica[], { uid: string }>(({ input, signal }) => engine.listReplicas(input.uid, signal));
  const prepare = fromPromise<void, PrepareInput>(({ input, signal }) => prepareResource(deps, input, signal));
  const runWindow = windowActor(deps, tracked);
  const removeAll = fromPromise<number, { uid: string }>(({ input, signal }) => removeAllReplicas(deps, tracked, input.uid, signal));
  const release = fromPromise<void, { ref: ResourceRef }>(({ input }) => finalizer.release(input.ref));
  return { observe, prepare, runWindow, removeAll, release };
}

type Tracker = <T>(work: Promise<T>) => Promise<T>;

/** Registers engine work so shutdown can wait for it, even after the actor was stopped. */
function inFlightTracker(deps: MachineDeps): Tracker {
  return <T>(work: Promise<T>): Promise<T> => {
    const set = deps.inFlightWork;
    if (!set) return work;
    set.add(work);
    const forget = (): void => {
      set.delete(work);
    };
    work.then(forget, forget);
    return work;
  };
}

async function prepareResource(deps: MachineDeps, input: PrepareInput, signal: AbortSignal): Promise<void> {
  const { engine, finalizer } = deps.ports;
  if (input.ensureFinalizer) {
    try {
      await finalizer.ensure(input.ref);
    } catch (error) {
      throw new PrepareFailure('finalizer', error);
    }
  }
  if (input.checkSource) {
    try {
      await engine.checkSource({ uid: input.ref.uid, namespace: input.ref.namespace, name: input.ref.name }, input.checkpoint, signal);
    } catch (error) {
      throw new PrepareFailure('source', error);
    }
  }
}

async function removeOne(deps: MachineDeps, uid: string, r: PlannedRemove, signal: AbortSignal): Promise<RemoveOutcome> {
  let release: (() => void) | undefined;
  try {
    release = await deps.removeSlots?.acquire(uid, signal);
    // Each Docker request adds an abort listener to the signal it is given; up to ten removals
    // share one, so each gets its own (AbortSignal.any adds no listener to the shared one) instead
    // of tripping Node's MaxListeners warning.
    await deps.ports.engine.removeReplica(uid, r.containerId, AbortSignal.any([signal]));
    return { ...r, ok: true };
  } catch (error) {
    return { ...r, ok: false, failure: classifyFailure(error) };
  } finally {
    release?.();
  }
}

/**
 * Restores (or cold-starts) one planned replica. It has its own controller, registered in
 * `controllers` under its slot while it runs, so a CANCEL can abort it alone.
 */
async function createOne(
  deps: MachineDeps,
  input: WindowInput,
  c: PlannedCreate,
  signal: AbortSignal,
  controllers: Map<string, AbortController>,
): Promise<CreateOutcome> {
  const spec: ReplicaSpec = {
    owner: { uid: input.ref.uid, namespace: input.ref.namespace, name: input.ref.name },
    node: input.node,
    replicaId: c.replicaId,
    attempt: c.attempt,
    templateHash: input.templateHash,
    template: input.template,
    checkpoint: input.checkpoint,
  };
  const t0 = deps.clock.now();
  const seconds = (): number => (deps.clock.now() - t0) / 1000;
  // Its own controller besides the window's signal, so it can be cancelled alone. AbortSignal.any
  // rather than a listener per create: ten creates and a removal on one signal would trip Node's
  // MaxListeners warning, though nothing leaks.
  const own = new AbortController();
  controllers.set(c.replicaId, own);
  try {
    // A restore waits for a host slot at most its own timeout (then RestoreTimeout, nothing started).
    const options = { timeoutMs: input.timeoutMs, queueTimeoutMs: input.timeoutMs, signal: AbortSignal.any([signal, own.signal]) };
    const { engine } = deps.ports;
    const replica = c.mode === 'cold' ? await engine.coldStartReplica(spec, options) : await engine.restoreReplica(spec, options);
    return { ...c, ok: true, replica, seconds: seconds() };
  } catch (error) {
    return { ...c, ok: false, failure: classifyFailure(error), seconds: seconds() };
  } finally {
    if (controllers.get(c.replicaId) === own) controllers.delete(c.replicaId);
  }
}

/**
 * Executes the window: starts the creates and removals it is given (its input first, then each
 * START the machine sends) and reports each one as it finishes. It decides nothing. It owns the
 * AbortControllers of what it started: CANCEL aborts named creates, stopping it aborts them all.
 */
function windowActor(deps: MachineDeps, tracked: Tracker) {
  return fromCallback<AnyEventObject, WindowInput & { work: WindowWork }, WindowReport>(({ input, sendBack, receive }) => {
    const stopped = new AbortController();
    const signal = stopped.signal;
    // The creates in flight, by slot, each with its own controller so a CANCEL can abort it alone.
    const createControllers = new Map<string, AbortController>();
    // Reports go back only while the window is open: a stopped actor's parent no longer listens.
    const report = (event: WindowReport): void => {
      if (!signal.aborted) sendBack(event);
    };
    // Removes and creates run side by side: a leftover and its replacement have different names
    // (the attempt number differs), and a slow stop must not hold back the restores.
    const start = (work: WindowWork): void => {
      for (const c of work.creates) void tracked(createOne(deps, input, c, signal, createControllers)).then((outcome) => report({ type: 'CREATED', outcome }));
      for (const r of work.removes) void tracked(removeOne(deps, input.ref.uid, r, signal)).then((outcome) => report({ type: 'REMOVED', outcome }));
    };
    const cancel = (event: CancelCreates): void => {
      const reason = new Error(event.reason);
      for (const slot of event.slots) createControllers.get(slot)?.abort(reason);
    };
    receive((event) => {
      if (event.type === 'START') start(event as AnyEventObject & WindowWork);
      else if (event.type === 'CANCEL') cancel(event as CancelCreates);
    });
    start(input.work);
    return () => stopped.abort(new Error('the restore window was closed'));
  });
}

/** The planner's removals for a resource being deleted: every observed container it may remove now. */
function removalsFor(observed: Replica[]): PlannedRemove[] {
  return planWork({
    desired: { replicas: 0, templateHash: '', maxConcurrent: 10, maxAttempts: 1, fallback: 'None', paused: false, deleting: true },
    observed,
    expectations: { creates: [], removes: [] },
    history: new Map(),
    successfulRestores: 0,
    engineInFlight: 0,
    engineLimit: 10,
    canary: false,
  }).removes;
}

/** Removes every container of the resource on this node; re-lists until none is left. */
async function removeAllReplicas(deps: MachineDeps, tracked: Tracker, uid: string, signal: AbortSignal): Promise<number> {
  const { engine } = deps.ports;
  let removed = 0;
  for (let round = 0; round < 3; round++) {
    const observed = await engine.listReplicas(uid, signal);
    const removes = removalsFor(observed);
    if (removes.length === 0) {
      if (observed.length === 0) {
        // Every container is gone: so is any use for this node's bootstrap checkpoint of the resource.
        await engine.reclaimBootstrap?.(uid);
        return removed;
      }
      // Only containers Docker is already removing are left: look again next round.
      continue;
    }
    // All at once: the host's removal slots bound how many stop together.
    const outcomes = await tracked(Promise.all(removes.map((r) => removeOne(deps, uid, r, signal))));
    const failed = outcomes.find((o) => !o.ok);
    removed += outcomes.filter((o) => o.ok).length;
    if (failed && !failed.ok) throw Object.assign(new Error(`remove ${failed.containerId}: ${failed.failure.message}`), { code: failed.failure.reason });
  }
  const left = await engine.listReplicas(uid, signal);
  if (left.length === 0) {
    await engine.reclaimBootstrap?.(uid);
    return removed;
  }
  throw Object.assign(new Error(`${left.length} container(s) still present after removal: ${left.map((r) => r.containerName).join(', ')}`), {
    code: 'Unknown',
  });
}
