// Context, input, options and results of the reconcile machine.

import type { CheckpointReplicaSet, CheckpointSource, ContainerTemplate, NodeStatus } from '../../api/types.js';
import type { AgentLimits } from '../../api/validate.js';
import type { FairLimiter } from '../../engine/limiter.js';
import type { DegradedReason, FailureReason, Replica } from '../../engine/types.js';
import type { BackoffPolicy } from '../../backoff.js';
import type { FieldError } from '../desired.js';
import type { ClassifiedFailure } from '../errors.js';
import type { EngineOutage } from '../forgiveness.js';
import type { DesiredState, Expectations, Plan, PlannedCreate, PlannedRemove, SlotHistory } from '../planner.js';
import type { NodeSelection } from '../node-selection.js';
import type { Clock, ReconcilePorts, ResourceRef } from '../ports.js';

export interface MachineOptions {
  /** Transient failures: delay before the next restores. Default 1 s doubling to 60 s. */
  backoff: BackoffPolicy;
  /** Degraded: delay before the next probe. Default 30 s doubling to 10 min. */
  probe: BackoffPolicy;
  /** A RESYNC while Degraded on a missing/forbidden source re-checks it, at most once per this interval. */
  minProbeIntervalMs: number;
  /** Re-observe while replicas exist but are not ready yet (or a create is not visible yet). */
  waitingRecheckMs: number;
  /** Expectations not confirmed by an observation within this time are dropped. */
  expectationsTtlMs: number;
  /** A replica that ran this long proved itself: its death clears the slot's failure count (../forgiveness.ts). */
  provenAfterMs: number;
  /** Failures counted this long before the engine's event stream broke are blamed on the engine. */
  outageLookbackMs: number;
  /** ... and failures this long after it is back (work that straddled the outage). */
  outageGraceMs: number;
}

export const DEFAULT_MACHINE_OPTIONS: MachineOptions = {
  backoff: { initialMs: 1_000, maxMs: 60_000 },
  probe: { initialMs: 30_000, maxMs: 600_000 },
  minProbeIntervalMs: 30_000,
  waitingRecheckMs: 5_000,
  expectationsTtlMs: 300_000,
  provenAfterMs: 60_000,
  // dockerd stops every container (10 s stop timeout by default) before it closes the stream.
  outageLookbackMs: 30_000,
  outageGraceMs: 5_000,
};

/** What the machine closes over: ports, the node it runs for, a clock, options. */
export interface MachineDeps {
  ports: ReconcilePorts;
  node: string;
  clock: Clock;
  options: MachineOptions;
  /** This agent's limits for spec validation (checkpoint root, host CPUs). */
  agentLimits?: AgentLimits;
  /** Whether a resource's nodeSelector picks this node (the kube layer knows the node's labels). */
  selectsNode?: (resource: CheckpointReplicaSet) => NodeSelection;
  /**
   * The host's removal slots, shared by every resource: at most as many containers stop at once
   * as restores run (the engine's limit), so a deletion of 45 takes ceil(45 / 10) stop graces.
   */
  removeSlots?: FairLimiter;
  /** Engine work in flight (restores, removals), so shutdown can wait for it to settle. */
  inFlightWork?: Set<Promise<unknown>>;
}

export interface MachineInput {
  key: string;
}

/** How a probe out of Degraded checks whether the cause is gone. */
export type ProbeKind = 'source' | 'restore' | 'none';

export type Decision =
  | { kind: 'stop' }
  | { kind: 'delete' }
  | { kind: 'paused' }
  /** This agent's Node object is missing and the resource has a nodeSelector: keep what runs, act on nothing. */
  | { kind: 'nodeUnknown' }
  | { kind: 'degraded'; reason: DegradedReason; message: string; probe: ProbeKind }
  | { kind: 'backoff'; reason: FailureReason; message: string }
  | { kind: 'converged' }
  | { kind: 'waiting' }
  | { kind: 'prepare'; checkSource: boolean; ensureFinalizer: boolean }
  /** Open the restore window: start the plan's creates and removes, refill as each one finishes. */
  | { kind: 'restore' };

/** While the window is open: start what the plan allows now, or let what runs finish (and why). */
export type WindowStep = { kind: 'refill' } | { kind: 'drain'; reason: string };

interface DegradedState {
  reason: DegradedReason;
  message: string;
  probe: ProbeKind;
  generation: number;
  since: number;
  /** Probes made since entering Degraded (drives the probe delay). */
  probes: number;
  lastProbeAt: number;
}

/** What every restore of one window shares (the spec it was opened for). */
export interface WindowInput {
  ref: ResourceRef;
  node: string;
  templateHash: string;
  template: ContainerTemplate;
  checkpoint: CheckpointSource;
  timeoutMs: number;
}

/** Work the machine hands the window's executor: start these now. */
export interface WindowWork {
  creates: PlannedCreate[];
  removes: PlannedRemove[];
}

export type CreateOutcome =
  (PlannedCreate & { ok: true; replica: Replica; seconds: number }) | (PlannedCreate & { ok: false; failure: ClassifiedFailure; seconds: number });

export type RemoveOutcome = (PlannedRemove & { ok: true }) | (PlannedRemove & { ok: false; failure: ClassifiedFailure });

/** What the executor reports back, one finished create or removal at a time. */
export type WindowReport = { type: 'CREATED'; outcome: CreateOutcome } | { type: 'REMOVED'; outcome: RemoveOutcome };

/** Everything one window did, from open to drained (acted on once, after a fresh observation). */
export interface WindowResult {
  number: number;
  templateHash: string;
  /** The window was a probe out of Degraded (one restore). */
  probe: boolean;
  creates: CreateOutcome[];
  removes: RemoveOutcome[];
  seconds: number;
}

/** The open window: its spec, what runs now, and what finished so far. */
export interface WindowState extends WindowInput {
  number: number;
  probe: boolean;
  startedAt: number;
  /** Creates and removals started and not finished yet. */
  inFlight: PlannedCreate[];
  removing: PlannedRemove[];
  creates: CreateOutcome[];
  removes: RemoveOutcome[];
  /** Why no new work starts any more (the first drain reason), or undefined while it refills. */
  draining: string | undefined;
  /** Most creates in flight at once in this window (for the closing log and Event). */
  peak: number;
}

export interface PrepareInput {
  ref: ResourceRef;
  checkpoint: CheckpointSource;
  checkSource: boolean;
  ensureFinalizer: boolean;
}

export interface ReconcileContext {
  key: string;
  /** The latest object seen (a spec arriving while the window is open closes it; see windowStep). */
  resource: CheckpointReplicaSet | undefined;
  /** The object is gone from the API (deleted without our finalizer, or force-removed). */
  gone: boolean;
  /** The resource's nodeSelector picks this node (if not, it wants 0 replicas here). */
  selected: boolean;
  /** Since when the selector cannot be judged (no Node object); undefined when it can. */
  nodeUnknownSince: number | undefined;
  ref: ResourceRef | undefined;
  desired: DesiredState | undefined;
  specErrors: FieldError[];
  observed: Replica[];
  observeError: ClassifiedFailure | undefined;
  expectations: Expectations;
  history: ReadonlyMap<string, SlotHistory>;
  /** Successful restores of `templateHash`'s checkpoint on this node (slow start). */
  successes: { templateHash: string; count: number };
  plan: Plan | undefined;
  decision: Decision | undefined;
  /** The open restore window (restoring) and the result of the one that just closed (verifying/planning). */
  window: WindowState | undefined;
  lastWindow: WindowResult | undefined;
  windowCount: number;
  /** Consecutive windows (or observations) that failed transiently: drives the backoff delay. */
  failedRounds: number;
  degraded: DegradedState | undefined;
  /** The reason of the last Degraded event sent, so a probe that fails again does not repeat it. */
  announcedDegraded: DegradedReason | undefined;
  canary: boolean;
  /** `${generation}/${templateHash}` whose checkpoint source checked out. */
  sourceVerifiedFor: string | undefined;
  finalizerEnsured: boolean;
  stopRequested: boolean;
  /** When the current generation was first seen, for the time-to-converge metric. */
  generationSince: { generation: number; at: number };
  convergedGeneration: number | undefined;
  deleteFailures: number;
  lastStatus: NodeStatus | undefined;
  /** A replica changed on the engine while an observation was under way: look again before resting. */
  reobserve: boolean;
  /** Containers the engine's stream reported dead since the last successful list (status must not count them). */
  diedSinceList: readonly string[];
  /** The latest engine outage (its event stream broke), for forgiving failures it caused. */
  engineOutage: EngineOutage | undefined;
}
