// The runner: one reconcile actor per resource key, driven by the work queue.
//
// reconcile(resource, key) hands the latest object to that key's actor and resolves when the actor
// rests (converged, waiting, backingOff, degraded, paused, deleted, stopped). The actor keeps its
// own timers (backoff, probes, rechecks), so a requeue hint is only a hint: a duplicate reconcile
// is harmless (a RESYNC never cuts a backoff short and probes are rate-limited).
//
// Restart safety needs no special code path: a new actor starts by OBSERVING (listing containers by
// OWNER_UID label), so whatever a previous agent left is adopted by the planner; 'created'/'exited'
// leftovers are replaced with a higher attempt number, duplicates in one slot are removed.

import { createActor } from 'xstate';
import type { CheckpointReplicaSet } from '../api/types.js';
import { FairLimiter } from '../engine/limiter.js';
import type { ContainerWatchEvent } from '../engine/types.js';
import type { AgentLimits } from '../api/validate.js';
import { ReconcileError } from './errors.js';
import { DEFAULT_MACHINE_OPTIONS, type MachineOptions } from './machine/types.js';
import { createReconcileMachine, isResting, outcomeOf, restingDelayMs, stateName, type ReconcileActor, type ReconcileSnapshot } from './machine/machine.js';
import type { NodeSelection } from './node-selection.js';
import { findOrphans, orphanCheckpointOwners } from './orphans.js';
import type { Clock, ReconcileOutcome, ReconcilePorts } from './ports.js';

/**
 * Wall clock plus timers, the shape of xstate's own Clock (whose ids are `any`: a timer id is a
 * number in browsers and a Timeout object in Node), so xstate's SimulatedClock fits as is.
 */
interface RunnerClock extends Clock {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- mirrors xstate's Clock
  setTimeout(fn: (...args: any[]) => void, timeout: number): any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- mirrors xstate's Clock
  clearTimeout(id: any): void;
}

export interface ReconcilerOptions {
  /** This agent's node name (NodeStatus.node, the NODE label). */
  node: string;
  clock?: RunnerClock;
  machine?: Partial<MachineOptions>;
  /** On stop(): how long restores in flight may run on before they are aborted. Default 30 s. */
  stopGraceMs?: number;
  /** After aborting: how long to wait for the engine to clean up aborted work. Default 15 s. */
  abortGraceMs?: number;
  /** collectOrphans leaves containers younger than this alone. Default 2 min. */
  orphanMinAgeMs?: number;
  /** This agent's limits for spec validation (checkpoint root, host CPUs). */
  agentLimits?: AgentLimits;
  /** Whether a resource's nodeSelector picks this node; default: every resource does. */
  selectsNode?: (resource: CheckpointReplicaSet) => NodeSelection;
}

export interface ReconcileResult {
  outcome: ReconcileOutcome;
  /** The actor's state name, e.g. "converged" or "deleting.retryWait". */
  state: string;
  /** When the actor's own timer will act next (a hint for the queue; duplicates are harmless). */
  requeueAfterMs?: number;
}

interface OrphanCollection {
  removed: number;
  failed: number;
}

export interface Reconciler {
  reconcile(resource: CheckpointReplicaSet | undefined, key: string): Promise<ReconcileResult>;
  collectOrphans(knownUids: ReadonlySet<string>): Promise<OrphanCollection>;
  /**
   * The engine's container watch: a replica changed (its owner's actor looks again at once, or after
   * the observation under way), or the stream broke / resumed (every actor learns). Returns the keys
   * told; none for a replica whose owner has no actor (the caller enqueues that resource instead).
   */
  engineChanged(event: ContainerWatchEvent): string[];
  /**
   * A changed object straight from the watch, for an actor that is BUSY (the work queue holds its
   * key until it rests): a deletion aborts the restore window at once, a scale-down cancels the restores it
   * no longer wants. An actor at rest, or none, is left to the queue.
   */
  offer(resource: CheckpointReplicaSet | undefined, key: string): void;
  stop(): Promise<void>;
  /** The current snapshot of a key's actor (for /debug and tests). */
  snapshot(key: string): ReconcileSnapshot | undefined;
  keys(): string[];
}

const systemClock: RunnerClock = {
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
  clearTimeout: (id: NodeJS.Timeout) => clearTimeout(id),
};

interface Entry {
  key: string;
  uid: string;
  generation: number | undefined;
  deleting: boolean;
  actor: ReconcileActor;
  unsubscribe: () => void;
}

export function createReconciler(ports: ReconcilePorts, options: ReconcilerOptions): Reconciler {
  const clock = options.clock ?? systemClock;
  const machineOptions: MachineOptions = { ...DEFAULT_MACHINE_OPTIONS, ...options.machine };
  const stopGraceMs = options.stopGraceMs ?? 30_000;
  const abortGraceMs = options.abortGraceMs ?? 15_000;
  const orphanMinAgeMs = options.orphanMinAgeMs ?? 120_000;
  const inFlightWork = new Set<Promise<unknown>>();
  // One per host (this reconciler): removals of every resource share it, like restores share the engine's.
  const removeSlots = new FairLimiter(ports.engine.concurrencyLimit);
  const entries = new Map<string, Entry>();
  const { logger } = ports;
  let stopping = false;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      clock.setTimeout(resolve, ms);
    });

  // One machine definition for every resource (its deps are this reconciler's); each actor's own
  // state is its context and its window's executor.
  const machine = createReconcileMachine({
    ports,
    node: options.node,
    clock,
    options: machineOptions,
    inFlightWork,
    removeSlots,
    ...(options.agentLimits ? { agentLimits: options.agentLimits } : {}),
    ...(options.selectsNode ? { selectsNode: options.selectsNode } : {}),
  });

  function create(key: string, resource: CheckpointReplicaSet): Entry {
    const actor = createActor(machine, { input: { key }, clock });
    let previous = stateName(actor.getSnapshot());
    const subscription = actor.subscribe({
      next: (snapshot) => {
        const current = stateName(snapshot);
        if (current === previous) return;
        const fields = {
          key,
          from: previous,
          to: current,
          generation: snapshot.context.ref?.generation,
          decision: snapshot.context.decision?.kind,
        };
        if (isResting(snapshot)) logger.info('reconcile state', fields);
        else logger.debug('reconcile state', fields);
        previous = current;
      },
      error: (error) => logger.error('reconcile actor failed', { key, error: error instanceof Error ? error.stack : String(error) }),
    });
    actor.start();
    const entry: Entry = {
      key,
      uid: resource.metadata.uid,
      generation: undefined,
      deleting: false,
      actor,
      unsubscribe: () => subscription.unsubscribe(),
    };
    entries.set(key, entry);
    return entry;
  }

  function dispose(entry: Entry): void {
    if (entries.get(entry.key) === entry) entries.delete(entry.key);
    entry.unsubscribe();
    entry.actor.stop();
  }

  function waitResting(actor: ReconcileActor): Promise<ReconcileSnapshot> {
    return new Promise((resolve) => {
      const now = actor.getSnapshot();
      if (isResting(now)) {
        resolve(now);
        return;
      }
      const subscription = actor.subscribe({
        next: (snapshot) => {
          if (!isResting(snapshot)) return;
          subscription.unsubscribe();
          resolve(snapshot);
        },
        error: () => {
          subscription.unsubscribe();
          resolve(actor.getSnapshot());
        },
        complete: () => resolve(actor.getSnapshot()),
      });
    });
  }

  async function settle(entry: Entry): Promise<ReconcileResult> {
    const snapshot = await waitResting(entry.actor);
    if (snapshot.status === 'error') {
      dispose(entry);
      throw new ReconcileError('ActorFailed', `the reconcile actor of ${entry.key} failed; it will be recreated on the next reconcile`, {
        cause: snapshot.error,
      });
    }
    const outcome = outcomeOf(snapshot);
    if (snapshot.status === 'done') dispose(entry);
    const requeueAfterMs = restingDelayMs(snapshot, machineOptions);
    return { outcome, state: stateName(snapshot), ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}) };
  }

  async function reconcileOnce(resource: CheckpointReplicaSet | undefined, key: string): Promise<ReconcileResult> {
    if (stopping) return { outcome: 'stopped', state: 'stopped' };
    let entry = entries.get(key);
    if (entry && resource && entry.uid !== resource.metadata.uid) {
      // The object was deleted and re-created under the same name: finish the old one first.
      logger.info('resource re-created under the same name', { key, oldUid: entry.uid, newUid: resource.metadata.uid });
      entry.actor.send({ type: 'GONE' });
      await settle(entry);
      if (entries.get(key) === entry) dispose(entry);
      entry = undefined;
    }
    if (!resource) {
      if (!entry) return { outcome: 'deleted', state: 'deleted' };
      entry.actor.send({ type: 'GONE' });
      return settle(entry);
    }
    if (!entry) entry = create(key, resource);
    const generation = resource.metadata.generation;
    const deleting = resource.metadata.deletionTimestamp !== undefined;
    const changed = entry.generation !== generation || deleting !== entry.deleting;
    entry.generation = generation;
    entry.deleting = deleting;
    entry.actor.send({ type: changed ? 'SPEC' : 'RESYNC', resource });
    return settle(entry);
  }

  /** Bootstrap checkpoints of resources that no longer exist (deleted while no agent ran). */
  const reclaimOrphanCheckpoints = async (knownUids: ReadonlySet<string>, activeUids: ReadonlySet<string>): Promise<void> => {
    const owners = (await ports.engine.bootstrapOwners?.()) ?? [];
    if (owners.length === 0) return;
    const replicaOwners = new Set((await ports.engine.listAllReplicas()).map((r) => r.ownerUid));
    for (const uid of orphanCheckpointOwners(owners, { knownUids, activeUids, replicaOwners })) {
      if (stopping) return;
      const bytes = await ports.engine.reclaimBootstrap?.(uid).catch((error: unknown) => {
        logger.warn('orphan bootstrap checkpoint removal failed', { ownerUid: uid, error: error instanceof Error ? error.message : String(error) });
        return 0;
      });
      logger.info('orphan bootstrap checkpoint removed', { ownerUid: uid, bytes });
    }
  };

  return {
    async reconcile(resource, key) {
      const started = performance.now();
      try {
        const result = await reconcileOnce(resource, key);
        ports.metrics?.reconciled(result.outcome, (performance.now() - started) / 1000);
        return result;
      } catch (error) {
        ports.metrics?.reconciled('error', (performance.now() - started) / 1000);
        throw error;
      }
    },

    engineChanged(event) {
      if (stopping) return [];
      const at = clock.now();
      const targets = event.type === 'replica' ? [...entries.values()].filter((e) => e.uid === event.change.ownerUid) : [...entries.values()];
      const change = event.type === 'replica' ? 'replica' : event.type;
      const died =
        event.type === 'replica' && event.change.action !== 'start' && event.change.action !== 'health_status' ? event.change.containerId : undefined;
      for (const entry of targets) entry.actor.send({ type: 'ENGINE', change, at, ...(died ? { died } : {}) });
      return targets.map((e) => e.key);
    },

    offer(resource, key) {
      const entry = entries.get(key);
      if (stopping || !entry || isResting(entry.actor.getSnapshot())) return;
      if (!resource) {
        entry.actor.send({ type: 'GONE' });
        return;
      }
      // Re-created under the same name: reconcileOnce finishes the old one first.
      if (entry.uid !== resource.metadata.uid) return;
      const deleting = resource.metadata.deletionTimestamp !== undefined;
      if (entry.generation === resource.metadata.generation && entry.deleting === deleting) return;
      entry.generation = resource.metadata.generation;
      entry.deleting = deleting;
      entry.actor.send({ type: 'SPEC', resource });
    },

    async collectOrphans(knownUids) {
      const replicas = await ports.engine.listAllReplicas();
      const activeUids = new Set([...entries.values()].map((e) => e.uid));
      const orphans = findOrphans({ replicas, knownUids, activeUids, now: clock.now(), minAgeMs: orphanMinAgeMs });
      let removed = 0;
      let failed = 0;
      for (const orphan of orphans) {
        if (stopping) break;
        try {
          await ports.engine.removeReplica(orphan.ownerUid, orphan.containerId);
          removed++;
          logger.info('orphan removed', { ownerUid: orphan.ownerUid, container: orphan.containerName, replicaId: orphan.replicaId });
        } catch (error) {
          failed++;
          logger.warn('orphan removal failed', {
            ownerUid: orphan.ownerUid,
            container: orphan.containerName,
            error: error instanceof Error ? error.message : String(error),
          });
        }
      }
      await reclaimOrphanCheckpoints(knownUids, activeUids);
      return { removed, failed };
    },

    async stop() {
      stopping = true;
      const all = [...entries.values()];
      for (const entry of all) entry.actor.send({ type: 'STOP' });
      // Restores in flight finish within the grace period; then they are aborted (the engine removes
      // what an aborted restore had made) and we wait, bounded, for that cleanup to settle.
      const finished = Promise.all(all.map((e) => waitResting(e.actor)));
      await Promise.race([finished, sleep(stopGraceMs)]);
      for (const entry of all) {
        if (!isResting(entry.actor.getSnapshot()))
          logger.warn('aborting in-flight work on shutdown', { key: entry.key, state: stateName(entry.actor.getSnapshot()) });
        dispose(entry);
      }
      if (inFlightWork.size > 0) await Promise.race([Promise.allSettled([...inFlightWork]), sleep(abortGraceMs)]);
      logger.info('reconciler stopped', { resources: all.length, unsettledWork: inFlightWork.size });
    },

    snapshot(key) {
      return entries.get(key)?.actor.getSnapshot();
    },

    keys() {
      return [...entries.keys()];
    },
  };
}
