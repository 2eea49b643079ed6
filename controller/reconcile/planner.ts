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

const removal = (r: Replica, cause: RemoveCause): PlannedRemove => ({
  containerId: r.containerId,
  replicaId: r.replicaId,
  templateHash: r.templateHash,
  cause,
});

/** Rule 1. Deleting: remove every observed container, create nothing, forget every slot. */
function planDeletion(
  desired: DesiredState,
  observed: readonly Replica[],
  visible: readonly Replica[],
  history: PlannerInput['history'],
  window: number,
): Plan {
  return {
    creates: [],
    removes: visible.map((r) => removal(r, 'deleting')),
    forget: [...history.keys()],
    window,
    summary: summarize(desired, visible, [], [], [], [], [], observed.length - visible.length),
    converged: visible.length === 0,
  };
}

/** Rule 2. Paused: change nothing, only count. */
function planPaused(desired: DesiredState, observed: readonly Replica[], visible: readonly Replica[], window: number): Plan {
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

/** Rule 4. One container per slot of the current template: keep the best, the rest are duplicates. */
function oneContainerPerSlot(live: readonly Replica[], templateHash: string): { kept: Replica[]; duplicates: Replica[] } {
  const bySlot = new Map<string, Replica[]>();
  for (const r of live) {
    if (r.templateHash !== templateHash) continue;
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
  return { kept, duplicates };
}

/** Rule 3. Slots of the current template that have no container (failed restores, leftovers), and what each waits for. */
function slotsWithoutContainer(input: Pick<PlannerInput, 'desired' | 'history'>, leftovers: readonly Replica[], taken: ReadonlySet<string>): WaitingSlot[] {
  const { desired, history } = input;
  const ids = new Set<string>();
  for (const [replicaId, entry] of history) {
    if (entry.templateHash === desired.templateHash) ids.add(replicaId);
  }
  for (const r of leftovers) {
    if (r.templateHash === desired.templateHash) ids.add(r.replicaId);
  }
  return [...ids]
    .filter((id) => !taken.has(id))
    .sort(compareSlotIds)
    .map((replicaId) => ({ replicaId, kind: waitingKind(history.get(replicaId), desired) }));
}

/**
 * Rule 5. Too many slots for spec.replicas: drop waiting slots first (blocked, exhausted, cold,
 * retry; highest id first), then remove containers (not-ready before ready, newest first).
 */
function fitToReplicas(
  replicas: number,
  kept: readonly Replica[],
  pending: number,
  waiting: readonly WaitingSlot[],
): { kept: Replica[]; waiting: WaitingSlot[]; victims: Replica[]; dropped: string[] } {
  let excess = kept.length + pending + waiting.length - replicas;
  if (excess <= 0) return { kept: [...kept], waiting: [...waiting], victims: [], dropped: [] };
  const dropOrder = [...waiting].sort((a, b) => WAITING_DROP_ORDER[a.kind] - WAITING_DROP_ORDER[b.kind] || -compareSlotIds(a.replicaId, b.replicaId));
  const dropped: string[] = [];
  for (const w of dropOrder) {
    if (excess === 0) break;
    dropped.push(w.replicaId);
    excess--;
  }
  const victims = [...kept].sort(byRemovalPreference).slice(0, excess);
  const victimIds = new Set(victims.map((v) => v.containerId));
  return {
    kept: kept.filter((r) => !victimIds.has(r.containerId)),
    waiting: waiting.filter((w) => !dropped.includes(w.replicaId)),
    victims,
    dropped,
  };
}

/** Rule 6. An old-template replica goes once a ready new one can take its place (surge, never a gap). */
function outdatedVictims(replicas: number, liveOld: readonly Replica[], kept: readonly Replica[]): Replica[] {
  const readyCurrent = kept.filter((r) => r.ready).length;
  const keepOld = Math.max(0, replicas - readyCurrent);
  return [...liveOld].sort(byRemovalPreference).slice(0, Math.max(0, liveOld.length - keepOld));
}

/**
 * Rule 8, then the order of creates: a canary probe retries blocked and exhausted slots first; a
 * permanent failure blocks every other create; then retries and fallbacks, then new slots.
 */
function createCandidates(
  input: Pick<PlannerInput, 'canary' | 'history' | 'observed'>,
  waiting: readonly WaitingSlot[],
  leftovers: readonly Replica[],
  newSlots: readonly string[],
): PlannedCreate[] {
  const nextAttempt = (replicaId: string): number => {
    let last = input.history.get(replicaId)?.lastAttempt ?? 0;
    for (const r of input.observed) if (r.replicaId === replicaId) last = Math.max(last, r.attempt);
    return last + 1;
  };
  const blocked = waiting.filter((w) => w.kind === 'blocked');
  const candidates: PlannedCreate[] = [];
  if (input.canary) {
    for (const w of [...blocked, ...waiting.filter((x) => x.kind === 'exhausted')]) {
      candidates.push({ replicaId: w.replicaId, attempt: nextAttempt(w.replicaId), mode: 'restore', cause: 'probe' });
    }
  }
  if (blocked.length > 0 && !input.canary) return candidates;
  for (const w of waiting) {
    if (w.kind === 'retry') {
      const hasLeftover = leftovers.some((r) => r.replicaId === w.replicaId);
      candidates.push({ replicaId: w.replicaId, attempt: nextAttempt(w.replicaId), mode: 'restore', cause: hasLeftover ? 'replace' : 'retry' });
    } else if (w.kind === 'cold') {
      candidates.push({ replicaId: w.replicaId, attempt: nextAttempt(w.replicaId), mode: 'cold', cause: 'fallback' });
    }
  }
  for (const replicaId of newSlots) candidates.push({ replicaId, attempt: 1, mode: 'restore', cause: 'new' });
  return candidates;
}

/** Rule 7. How many creates may start now: the window's free places, and never above replicas + bound containers. */
function createBudget(input: PlannerInput, window: number, containersAfterRemoves: number): number {
  const totalCap = input.desired.replicas + concurrencyBound(input.desired);
  return Math.max(0, Math.min(startsAllowed(input, window), totalCap - containersAfterRemoves));
}

export function plan(input: PlannerInput): Plan {
  const { desired, observed, expectations, history } = input;
  // Ready replicas restored from this template's checkpoint prove it on this node, so an agent
  // restarted mid-rollout (its counter lost) does not slow-start again.
  const provenByObservation = observed.filter((r) => r.ready && r.startMode === 'restore' && r.templateHash === desired.templateHash).length;
  const window = windowLimit({ ...input, successfulRestores: Math.max(input.successfulRestores, provenByObservation) });
  const removingIds = new Set(expectations.removes.map((r) => r.containerId));
  const visible = observed.filter((r) => r.state !== 'removing' && !removingIds.has(r.containerId));
  if (desired.deleting) return planDeletion(desired, observed, visible, history, window);
  if (desired.paused) return planPaused(desired, observed, visible, window);

  const leftovers = visible.filter(isLeftover);
  const live = visible.filter((r) => !isLeftover(r));
  const liveOld = live.filter((r) => r.templateHash !== desired.templateHash);
  const { kept, duplicates } = oneContainerPerSlot(live, desired.templateHash);
  const keptSlots = new Set(kept.map((r) => r.replicaId));
  const observedIds = new Set(observed.map((r) => r.containerId));
  const pending = expectations.creates.filter((c) => c.templateHash === desired.templateHash && !observedIds.has(c.containerId) && !keptSlots.has(c.replicaId));
  const taken = new Set([...keptSlots, ...pending.map((c) => c.replicaId)]);
  const fit = fitToReplicas(desired.replicas, kept, pending.length, slotsWithoutContainer(input, leftovers, taken));
  const { waiting } = fit;
  // Old templates' history is of no use any more; nor are dropped slots and removed replicas'.
  const oldHistory = [...history].filter(([, entry]) => entry.templateHash !== desired.templateHash).map(([id]) => id);
  const forget = [...oldHistory, ...fit.dropped, ...fit.victims.map((v) => v.replicaId)];

  const removes: PlannedRemove[] = [
    ...fit.victims.map((r) => removal(r, 'scale-down')),
    ...leftovers.map((r) => removal(r, 'leftover')),
    ...duplicates.map((r) => removal(r, 'duplicate')),
    ...outdatedVictims(desired.replicas, liveOld, fit.kept).map((r) => removal(r, 'outdated')),
  ];
  const liveRemoved = removes.filter((r) => r.cause === 'scale-down' || r.cause === 'outdated' || r.cause === 'duplicate').length;
  const used = new Set<string>([
    ...observed.map((r) => r.replicaId),
    ...history.keys(),
    ...expectations.creates.map((c) => c.replicaId),
    ...expectations.removes.map((r) => r.replicaId),
  ]);
  const slotCount = fit.kept.length + pending.length + waiting.length;
  const newSlots = allocateSlotIds(used, Math.max(0, desired.replicas - slotCount));
  const creates = createCandidates(input, waiting, leftovers, newSlots).slice(0, createBudget(input, window, live.length - liveRemoved + pending.length));

  const createdIds = new Set(creates.map((c) => c.replicaId));
  const blocked = waiting.filter((w) => w.kind === 'blocked').map((w) => w.replicaId);
  const exhausted = waiting.filter((w) => w.kind === 'exhausted').map((w) => w.replicaId);
  const failedSlots = [...blocked, ...exhausted].filter((id) => !createdIds.has(id));
  const waitingSlots = waiting.filter((w) => (w.kind === 'retry' || w.kind === 'cold') && !createdIds.has(w.replicaId)).map((w) => w.replicaId);
  const summary = summarize(desired, live, fit.kept, pending, failedSlots, blocked, waitingSlots, observed.length - visible.length);
  const converged =
    creates.length === 0 &&
    removes.length === 0 &&
    pending.length === 0 &&
    waiting.length === 0 &&
    liveOld.length === 0 &&
    fit.kept.length === desired.replicas &&
    fit.kept.every((r) => r.ready);
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
