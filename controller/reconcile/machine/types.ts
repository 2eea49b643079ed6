// Context, input, options and results of the reconcile machine.

import type { CheckpointReplicaSet, CheckpointSource, ContainerTemplate, NodeStatus } from '../../api/types.js';
import type { AgentLimits } from '../../api/validate.js';
import type { FailureReason, Replica } from '../../engine/types.js';
import type { BackoffPolicy } from '../backoff.js';
import type { FieldError } from '../desired.js';
import type { ClassifiedFailure } from '../errors.js';
import type { EngineOutage } from '../forgiveness.js';
import type { DesiredState, Expectations, Plan, PlannedCreate, PlannedRemove, SlotHistory } from '../planner.js';
import type { NodeSelection } from '../node-selection.js';
import type { Clock, ReconcilePorts, ResourceRef } from '../ports.js';

export interface MachineOptions {
  /** Transient failures: delay before the next batch. Default 1 s doubling to 60 s. */
  backoff: BackoffPolicy;
  /** Degraded: delay before the next probe. Default 30 s doubling to 10 min. */
  probe: BackoffPolicy;
  /** A RESYNC while Degraded on a missing/forbidden source re-checks it, at most once per this interval. */
  minProbeIntervalMs: number;
  /** Re-observe while replicas exist but are not ready yet (or a create is not visible yet). */
  waitingRecheckMs: number;
  /** Expectations not confirmed by an observation within this time are dropped. */
  expectationsTtlMs: number;
  /**
   * Containers removed at once (removal is not a restore; this only spares the Docker daemon). Each
   * removal mostly waits out the app's stop grace (10 s for a process that ignores SIGTERM), so a
   * deletion of N replicas takes ceil(N / this) grace periods: 50 covers a resource of up to 50.
   */
  removeConcurrency: number;
  /** A replica that ran this long proved itself: its death clears the slot's failure count (../forgiveness.ts). */
  provenAfterMs: number;
  /** Failures counted this long before the engine's event stream broke are blamed on the engine. */
  outageLookbackMs: number;
  /** ... and failures this long after it is back (work that straddled the outage). */
  outageGraceMs: number;
}

export const DEFAULT_MACHINE_OPTIONS: MachineOptions = {
  backoff: { baseMs: 1_000, maxMs: 60_000 },
  probe: { baseMs: 30_000, maxMs: 600_000 },
  minProbeIntervalMs: 30_000,
  waitingRecheckMs: 5_000,
  expectationsTtlMs: 300_000,
  removeConcurrency: 50,
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
  /** Engine work in flight (batches, removals), so shutdown can wait for it to settle. */
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
  | { kind: 'degraded'; reason: string; message: string; probe: ProbeKind }
  | { kind: 'backoff'; reason: FailureReason; message: string }
  | { kind: 'converged' }
  | { kind: 'waiting' }
  | { kind: 'prepare'; checkSource: boolean; ensureFinalizer: boolean }
  | { kind: 'batch' };

export interface DegradedState {
  reason: string;
  message: string;
  probe: ProbeKind;
  generation: number;
  since: number;
  /** Probes made since entering Degraded (drives the probe delay). */
  probes: number;
  lastProbeAt: number;
}

export interface BatchInput {
  ref: ResourceRef;
  node: string;
  templateHash: string;
  template: ContainerTemplate;
  checkpoint: CheckpointSource;
  timeoutMs: number;
  creates: PlannedCreate[];
  removes: PlannedRemove[];
}

export type CreateOutcome =
  | (PlannedCreate & { ok: true; replica: Replica; seconds: number })
  | (PlannedCreate & { ok: false; failure: ClassifiedFailure; seconds: number });

export type RemoveOutcome = (PlannedRemove & { ok: true }) | (PlannedRemove & { ok: false; failure: ClassifiedFailure });

export interface BatchResult {
  number: number;
  templateHash: string;
  /** The batch was a probe out of Degraded. */
  probe: boolean;
  creates: CreateOutcome[];
  removes: RemoveOutcome[];
  seconds: number;
}

export interface PrepareInput {
  ref: ResourceRef;
  checkpoint: CheckpointSource;
  checkSource: boolean;
  ensureFinalizer: boolean;
}

export interface ReconcileContext {
  key: string;
  /** The latest object seen (specs arriving mid-batch wait here for the batch boundary). */
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
  /** The batch in flight (restoring) and the one that just finished (verifying/planning). */
  batch: (BatchInput & { number: number; probe: boolean }) | undefined;
  lastBatch: BatchResult | undefined;
  batchCount: number;
  /** Consecutive batches (or observations) that failed transiently: drives the backoff delay. */
  failedRounds: number;
  degraded: DegradedState | undefined;
  /** The reason of the last Degraded event sent, so a probe that fails again does not repeat it. */
  announcedDegraded: string | undefined;
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
