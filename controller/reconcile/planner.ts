// The planner: a PURE function from desired and observed state to the work to start now on this
// node (called when a restore window opens and again each time one of its restores finishes). No I/O, no clock: everything it needs is in PlannerInput, so every rule below is unit-tested
// exhaustively (test/unit/reconcile/planner.test.ts).
//
// Rules, in the order they apply:
// 1. Deleting: remove every observed container, create nothing.
// 2. Paused: change nothing.
// 3. Leftovers (state created/exited/dead: a restore that died or an agent killed mid-restore) are
//    removed; their slot is refilled with the next attempt number, so names never clash.
// 4. Two live containers in one slot (a crash between create and bookkeeping): keep the best.
// 5. The current template's slots (live + created-but-not-yet-observed + waiting for a retry) are
//    counted against spec.replicas. Too many: drop waiting slots first, then not-ready containers,
//    then ready ones, newest first. Too few: new slots.
// 6. Template change (rolling, surge): new-template replicas are created first; an old-template
//    replica is removed only once enough new ones are READY to keep `replicas` serving. Why surge and
//    not remove-then-create: a restore takes seconds to minutes, so removing first would drop
//    capacity by up to a whole window for that long, and a broken new checkpoint would take serving
//    replicas down with it. The price is at most `bound` extra containers for a while: total
//    containers never exceed replicas + bound (checked below).
// 7. Creates in flight: a window of min(10, maxConcurrent, successes + 1) restores, refilled as each
//    one finishes, never more than the host's free slots. The window grows by one per success, and
//    each success also frees its own place, so in flight goes 1, 2, 4, 8, then the cap (slow start
//    as a window, not as barriers): a broken checkpoint costs one failed restore, not 45.
// 8. A slot whose restore failed permanently blocks ALL creates of this resource (outside a canary
//    probe): nothing more is spent on a checkpoint/image that is not there.

import type { RestoreFallback } from '../api/types.js';
import type { StartMode } from '../api/labels.js';
import { MAX_CONCURRENT_RESTORES } from '../api/schema.js';
import type { FailureReason, Replica, ReplicaState } from '../engine/types.js';
import { countDeath, type FailureCounting } from './forgiveness.js';
import { allocateSlotIds, compareSlotIds } from './slots.js';

export interface DesiredState {
  replicas: number;
  templateHash: string;
  maxConcurrent: number;
  maxAttempts: number;
  fallback: RestoreFallback;
  paused: boolean;
  deleting: boolean;
}

interface SlotFailure {
  reason: FailureReason;
  message: string;
  /** No retry can fix it (FAILURE_POLICY's `permanent`); blocks creates until a spec change or a probe. */
  permanent: boolean;
}

/** What happened to one slot of the current (or an earlier) template. */
export interface SlotHistory {
  templateHash: string;
  /** The highest attempt number used for this slot (part of the container name). */
  lastAttempt: number;
  /** Restore attempts that failed; compared with maxAttempts. */
  failedRestores: number;
  lastFailure?: SlotFailure;
  /** The ColdStart fallback was tried and failed too: the slot is given up. */
  coldStartFailed: boolean;
  /** The attempt whose container was last seen dead and counted as failed (counted once). */
  deadAttempt?: number;
  /** When each failure in failedRestores was counted (an engine outage can take recent ones back). */
  countedAt?: readonly number[];
}

/** A container this agent created whose creation the observed list may not show yet. */
export interface PendingCreate {
  replicaId: string;
  templateHash: string;
  containerId: string;
  since: number;
}

/** A container this agent removed that the observed list may still show. */
export interface PendingRemove {
  replicaId: string;
  containerId: string;
  since: number;
}

export interface Expectations {
  creates: readonly PendingCreate[];
  removes: readonly PendingRemove[];
}

export const NO_EXPECTATIONS: Expectations = { creates: [], removes: [] };

export interface PlannerInput {
  desired: DesiredState;
  observed: readonly Replica[];
  expectations: Expectations;
  history: ReadonlyMap<string, SlotHistory>;
  /** Restores of this template's checkpoint that succeeded on this node (slow start). */
  successfulRestores: number;
  /** Restores in flight on the whole host right now, and the host's limit. */
  engineInFlight: number;
  engineLimit: number;
  /** A probe out of Degraded: exactly one create, preferring the slot that failed. */
  canary: boolean;
  /**
   * This resource's creates already in flight in its open window (their slots are in
   * expectations.creates as pending); 0 when a window opens.
   */
  inFlight?: number;
}

type CreateCause = 'new' | 'retry' | 'replace' | 'fallback' | 'probe';
type RemoveCause = 'deleting' | 'leftover' | 'duplicate' | 'scale-down' | 'outdated';

export interface PlannedCreate {
  replicaId: string;
  attempt: number;
  mode: StartMode;
  cause: CreateCause;
}

export interface PlannedRemove {
  containerId: string;
  replicaId: string;
  templateHash: string;
  cause: RemoveCause;
}

export interface PlanSummary {
  desired: number;
  /** Live (not leftover, not being removed) containers of any template. */
  replicas: number;
  /** Live current-template containers that are ready. */
  ready: number;
  coldStarted: number;
  /** Live containers of an older template. */
  outdated: number;
  /** Created by us, not observed yet. */
  pending: number;
  /** Slots given up: attempts spent without a usable fallback, or failed permanently. */
  failedSlots: string[];
  /** Slots that failed permanently (a subset of failedSlots). */
  blockedSlots: string[];
  /** Slots waiting for a retry or a fallback that this plan did not reach. */
  waitingSlots: string[];
  /** Current-template containers that are live but not ready (restarting, paused, ...). */
  notReady: number;
  /** Containers still observed whose removal is planned or under way: not Ready until they are gone. */
  removing: number;
}

export interface Plan {
  creates: PlannedCreate[];
  removes: PlannedRemove[];
  /** History entries to drop (slots scaled away, or of an older template). */
  forget: string[];
  /** The window: most creates of this resource in flight at once right now. */
  window: number;
  summary: PlanSummary;
  /** Nothing to do and every desired replica is ready on the current template. */
  converged: boolean;
}

const LEFTOVER_STATES: ReadonlySet<ReplicaState> = new Set<ReplicaState>(['created', 'exited', 'dead']);

export function isLeftover(replica: Replica): boolean {
  return LEFTOVER_STATES.has(replica.state);
}

/** The window: min(10, maxConcurrent, successes + 1); a canary probe is one restore. */
export function windowLimit(input: Pick<PlannerInput, 'desired' | 'successfulRestores' | 'canary'>): number {
  if (input.canary) return 1;
  return Math.max(1, Math.min(concurrencyBound(input.desired), input.successfulRestores + 1));
}

/** Creates to start now: what the window has left, never more than the host's free slots. */
export function startsAllowed(input: Pick<PlannerInput, 'engineInFlight' | 'engineLimit' | 'inFlight'>, window: number): number {
  const ours = input.inFlight ?? 0;
  const hostFree = input.engineLimit - input.engineInFlight;
  // Starting more than the host can run only parks restores in the engine's queue, where a scale
  // change cannot take them back; but with nothing of ours in flight, one always starts so the
  // resource makes progress (the engine's limiter waits for a free slot).
  if (ours === 0) return Math.max(1, Math.min(window, hostFree));
  return Math.max(0, Math.min(window - ours, hostFree));
}

export function concurrencyBound(desired: Pick<DesiredState, 'maxConcurrent'>): number {
  return Math.max(1, Math.min(MAX_CONCURRENT_RESTORES, desired.maxConcurrent));
}

/** Removal order: not-ready before ready, then newest first; ties by attempt, then slot id. */
function byRemovalPreference(a: Replica, b: Replica): number {
  if (a.ready !== b.ready) return a.ready ? 1 : -1;
  const age = b.createdAt.getTime() - a.createdAt.getTime();
  if (age !== 0) return age;
  if (a.attempt !== b.attempt) return b.attempt - a.attempt;
  return -compareSlotIds(a.replicaId, b.replicaId);
}

/** Which of several containers in one slot to keep: ready, then the latest attempt, then newest. */
function byKeepPreference(a: Replica, b: Replica): number {
  if (a.ready !== b.ready) return a.ready ? -1 : 1;
  if (a.attempt !== b.attempt) return b.attempt - a.attempt;
  return b.createdAt.getTime() - a.createdAt.getTime();
}

type WaitingKind = 'retry' | 'cold' | 'exhausted' | 'blocked';

interface WaitingSlot {
  replicaId: string;
  kind: WaitingKind;
}

function waitingKind(entry: SlotHistory | undefined, desired: DesiredState): WaitingKind {
  if (!entry) return 'retry';
  if (entry.lastFailure?.permanent) return 'blocked';
  if (entry.failedRestores < desired.maxAttempts) return 'retry';
  if (desired.fallback === 'ColdStart' && !entry.coldStartFailed) return 'cold';
  return 'exhausted';
}

const WAITING_DROP_ORDER: Record<WaitingKind, number> = { blocked: 0, exhausted: 1, cold: 2, retry: 3 };

export function plan(input: PlannerInput): Plan {
  const { desired, observed, expectations, history } = input;
  // Ready replicas restored from this template's checkpoint prove it on this node, so an agent
  // restarted mid-rollout (its counter lost) does not slow-start again.
  const provenByObservation = observed.filter((r) => r.ready && r.startMode === 'restore' && r.templateHash === desired.templateHash).length;
  const window = windowLimit({ ...input, successfulRestores: Math.max(input.successfulRestores, provenByObservation) });
  const removingIds = new Set(expectations.removes.map((r) => r.containerId));
  const visible = observed.filter((r) => r.state !== 'removing' && !removingIds.has(r.containerId));

  if (desired.deleting) {
    return {
      creates: [],
      removes: visible.map((r) => ({ containerId: r.containerId, replicaId: r.replicaId, templateHash: r.templateHash, cause: 'deleting' })),
      forget: [...history.keys()],
      window,
      summary: summarize(desired, visible, [], [], [], [], [], observed.length - visible.length),
      converged: visible.length === 0,
    };
  }

  if (desired.paused) {
    const live = visible.filter((r) => !isLeftover(r));
    const current = live.filter((r) => r.templateHash === desired.templateHash);
    return {
      creates: [],
      removes: [],
      forget: [],
      window,
      summary: summarize(desired, live, current, [], [], [], [], observed.length - visible.length),
      converged: false,
    };
  }

  const removes: PlannedRemove[] = [];
  const remove = (r: Replica, cause: RemoveCause): void => {
    removes.push({ containerId: r.containerId, replicaId: r.replicaId, templateHash: r.templateHash, cause });
  };

  const leftovers = visible.filter(isLeftover);
  const live = visible.filter((r) => !isLeftover(r));
  const liveOld = live.filter((r) => r.templateHash !== desired.templateHash);

  // Rule 4: one container per slot.
  const bySlot = new Map<string, Replica[]>();
  for (const r of live) {
    if (r.templateHash !== desired.templateHash) continue;
    const list = bySlot.get(r.replicaId) ?? [];
    list.push(r);
    bySlot.set(r.replicaId, list);
  }
  const kept: Replica[] = [];
  const duplicates: Replica[] = [];
  for (const list of bySlot.values()) {
    const [best, ...rest] = [...list].sort(byKeepPreference);
    if (best) kept.push(best);
    duplicates.push(...rest);
  }
  const keptSlots = new Set(kept.map((r) => r.replicaId));
  const observedIds = new Set(observed.map((r) => r.containerId));
  const pending = expectations.creates.filter((c) => c.templateHash === desired.templateHash && !observedIds.has(c.containerId) && !keptSlots.has(c.replicaId));
  const pendingSlots = new Set(pending.map((c) => c.replicaId));

  // Slots of the current template that have no container: failed restores and leftovers.
  const waitingIds = new Set<string>();
  for (const [replicaId, entry] of history) {
    if (entry.templateHash === desired.templateHash) waitingIds.add(replicaId);
  }
  for (const r of leftovers) {
    if (r.templateHash === desired.templateHash) waitingIds.add(r.replicaId);
  }
  let waiting: WaitingSlot[] = [...waitingIds]
    .filter((id) => !keptSlots.has(id) && !pendingSlots.has(id))
    .sort(compareSlotIds)
    .map((replicaId) => ({ replicaId, kind: waitingKind(history.get(replicaId), desired) }));

  // Old templates' history is of no use any more.
  const forget: string[] = [];
  for (const [replicaId, entry] of history) {
    if (entry.templateHash !== desired.templateHash) forget.push(replicaId);
  }

  // Rule 5: count slots against spec.replicas.
  let slotCount = kept.length + pending.length + waiting.length;
  let keptAfter = [...kept];
  if (slotCount > desired.replicas) {
    let excess = slotCount - desired.replicas;
    const dropOrder = [...waiting].sort((a, b) => WAITING_DROP_ORDER[a.kind] - WAITING_DROP_ORDER[b.kind] || -compareSlotIds(a.replicaId, b.replicaId));
    const dropped = new Set<string>();
    for (const w of dropOrder) {
      if (excess === 0) break;
      dropped.add(w.replicaId);
      forget.push(w.replicaId);
      excess--;
    }
    waiting = waiting.filter((w) => !dropped.has(w.replicaId));
    const victims = [...kept].sort(byRemovalPreference).slice(0, excess);
    for (const v of victims) {
      remove(v, 'scale-down');
      forget.push(v.replicaId);
    }
    const victimIds = new Set(victims.map((v) => v.containerId));
    keptAfter = kept.filter((r) => !victimIds.has(r.containerId));
    slotCount = keptAfter.length + pending.length + waiting.length;
  }

  for (const r of leftovers) remove(r, 'leftover');
  for (const r of duplicates) remove(r, 'duplicate');

  // Rule 6: an old-template replica goes once a ready new one can take its place.
  const readyCurrent = keptAfter.filter((r) => r.ready).length;
  const keepOld = Math.max(0, desired.replicas - readyCurrent);
  const oldVictims = [...liveOld].sort(byRemovalPreference).slice(0, Math.max(0, liveOld.length - keepOld));
  for (const r of oldVictims) remove(r, 'outdated');

  // Rule 7 and 8: what to create now.
  const blocked = waiting.filter((w) => w.kind === 'blocked');
  const exhausted = waiting.filter((w) => w.kind === 'exhausted');
  const liveRemoved = removes.filter((r) => r.cause === 'scale-down' || r.cause === 'outdated' || r.cause === 'duplicate').length;
  const totalAfterRemoves = live.length - liveRemoved + pending.length;
  const totalCap = desired.replicas + concurrencyBound(desired);
  const budget = Math.max(0, Math.min(startsAllowed(input, window), totalCap - totalAfterRemoves));

  const used = new Set<string>([
    ...observed.map((r) => r.replicaId),
    ...history.keys(),
    ...expectations.creates.map((c) => c.replicaId),
    ...expectations.removes.map((r) => r.replicaId),
  ]);
  const newSlots = allocateSlotIds(used, Math.max(0, desired.replicas - slotCount));

  const nextAttempt = (replicaId: string): number => {
    let last = history.get(replicaId)?.lastAttempt ?? 0;
    for (const r of observed) if (r.replicaId === replicaId) last = Math.max(last, r.attempt);
    return last + 1;
  };

  const candidates: PlannedCreate[] = [];
  if (input.canary) {
    for (const w of [...blocked, ...exhausted]) {
      candidates.push({ replicaId: w.replicaId, attempt: nextAttempt(w.replicaId), mode: 'restore', cause: 'probe' });
    }
  }
  if (blocked.length === 0 || input.canary) {
    for (const w of waiting) {
      if (w.kind === 'retry') {
        const hasLeftover = leftovers.some((r) => r.replicaId === w.replicaId);
        candidates.push({ replicaId: w.replicaId, attempt: nextAttempt(w.replicaId), mode: 'restore', cause: hasLeftover ? 'replace' : 'retry' });
      } else if (w.kind === 'cold') {
        candidates.push({ replicaId: w.replicaId, attempt: nextAttempt(w.replicaId), mode: 'cold', cause: 'fallback' });
      }
    }
    for (const replicaId of newSlots) candidates.push({ replicaId, attempt: 1, mode: 'restore', cause: 'new' });
  }
  const creates = candidates.slice(0, budget);

  const createdIds = new Set(creates.map((c) => c.replicaId));
  const failedSlots = [...blocked, ...exhausted].map((w) => w.replicaId).filter((id) => !createdIds.has(id));
  const waitingSlots = waiting.filter((w) => (w.kind === 'retry' || w.kind === 'cold') && !createdIds.has(w.replicaId)).map((w) => w.replicaId);
  const summary = summarize(
    desired,
    live,
    keptAfter,
    pending,
    failedSlots,
    blocked.map((w) => w.replicaId),
    waitingSlots,
    observed.length - visible.length,
  );
  const converged =
    creates.length === 0 &&
    removes.length === 0 &&
    pending.length === 0 &&
    waiting.length === 0 &&
    liveOld.length === 0 &&
    keptAfter.length === desired.replicas &&
    keptAfter.every((r) => r.ready);
  return { creates, removes, forget: [...new Set(forget)], window, summary, converged };
}

function summarize(
  desired: DesiredState,
  live: readonly Replica[],
  current: readonly Replica[],
  pending: readonly PendingCreate[],
  failedSlots: string[],
  blockedSlots: string[],
  waitingSlots: string[],
  removing: number,
): PlanSummary {
  const ready = current.filter((r) => r.ready);
  return {
    desired: desired.replicas,
    replicas: live.length,
    ready: ready.length,
    coldStarted: ready.filter((r) => r.startMode === 'cold').length,
    outdated: live.filter((r) => r.templateHash !== desired.templateHash).length,
    pending: pending.length,
    failedSlots,
    blockedSlots,
    waitingSlots,
    notReady: current.length - ready.length,
    removing,
  };
}

/**
 * Folds leftovers into the slot history before planning: a leftover's attempt number is taken as
 * used, and a container that EXITED or DIED (it ran, then stopped) counts as a failed restore, so a
 * checkpoint whose process dies right after restore is bounded by maxAttempts like any failure. A
 * 'created' leftover (the agent was killed mid-restore) is not the checkpoint's fault: not counted.
 * With `counting`, a death is judged by ./forgiveness.ts (a proven replica, an engine outage).
 */
export function absorbLeftovers(
  history: ReadonlyMap<string, SlotHistory>,
  observed: readonly Replica[],
  templateHash: string,
  counting?: FailureCounting,
): Map<string, SlotHistory> {
  const next = new Map(history);
  for (const r of observed) {
    if (!isLeftover(r) || r.templateHash !== templateHash) continue;
    const entry = next.get(r.replicaId) ?? { templateHash, lastAttempt: 0, failedRestores: 0, coldStartFailed: false };
    if (entry.templateHash !== templateHash || r.attempt < entry.lastAttempt) continue;
    const died = r.state !== 'created';
    // A restore that "succeeded" sets lastAttempt to its attempt; its container dying later must
    // still count, once: deadAttempt remembers which attempt was counted.
    if (died ? r.attempt <= (entry.deadAttempt ?? 0) : r.attempt <= entry.lastAttempt) continue;
    const base: SlotHistory = { ...entry, lastAttempt: Math.max(entry.lastAttempt, r.attempt) };
    if (!died) {
      next.set(r.replicaId, base);
      continue;
    }
    const judged = r.startMode === 'restore' ? countDeath(base, r.createdAt.getTime(), counting) : base;
    next.set(r.replicaId, {
      ...judged,
      deadAttempt: r.attempt,
      coldStartFailed: entry.coldStartFailed || r.startMode === 'cold',
      lastFailure: { reason: 'Unknown', message: `container ${r.containerName} ${r.state} after it was started`, permanent: false },
    });
  }
  return next;
}
