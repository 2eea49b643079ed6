// This node's entry of status.nodes, computed purely from the plan's summary and the machine's
// phase. The kube layer aggregates node entries into the top-level status. The conditions and how
// kstatus, Flux and Argo CD read them: README.md, "Status and health".

import { kubeTime, transitionTime } from '../api/conditions.js';
import type { Condition, ConditionStatus, ConditionType, NodeBootstrapStatus, NodeStatus } from '../api/types.js';
import type { BootstrapState } from '../engine/types.js';
import type { PlanSummary } from './planner.js';
import type { ReplicaCounts } from './ports.js';

/** Progressing reasons (Progressing is True while work remains, False at rest). */
type ProgressReason = 'Restoring' | 'ScalingDown' | 'RollingUpdate' | 'WaitingForReplicas' | 'BackingOff' | 'Converged' | 'Paused' | 'Stalled' | 'NodeUnknown';

export interface Progress {
  status: ConditionStatus;
  reason: ProgressReason;
  message: string;
}

interface DegradedCause {
  /** A FailureReason (CheckpointNotFound, ImageNotFound, CriuFailed, ...), RestoreFailed or InvalidSpec. */
  reason: string;
  message: string;
}

export interface NodeStatusInput {
  node: string;
  generation: number;
  summary: PlanSummary;
  /** Creates of the restore window running right now. */
  restoringNow: number;
  paused: boolean;
  progress: Progress;
  degraded?: DegradedCause;
  previous?: NodeStatus;
  /** spec.checkpoint.bootstrap: the engine's state of this node's checkpoint. */
  bootstrap?: BootstrapState;
  now: Date;
}

/** status.nodes[].bootstrap from the engine's state (message capped to the schema's 4096). */
export function bootstrapStatus(state: BootstrapState): NodeBootstrapStatus {
  return {
    phase: state.phase,
    templateHash: state.templateHash,
    ...(state.created ? { checkpointCreated: kubeTime(state.created) } : {}),
    ...(state.bytes !== undefined ? { checkpointSizeBytes: state.bytes } : {}),
    message: state.message.slice(0, 4096),
  };
}

export function allReady(summary: PlanSummary): boolean {
  return (
    summary.ready === summary.desired &&
    summary.replicas === summary.desired &&
    summary.outdated === 0 &&
    summary.pending === 0 &&
    // A scale-down is done when the excess is gone, not when it is planned: Ready said too early
    // lets `kubectl wait` return while the old containers still run.
    summary.removing === 0 &&
    summary.failedSlots.length === 0
  );
}

export function replicaCounts(summary: PlanSummary, restoringNow: number): ReplicaCounts {
  return {
    desired: summary.desired,
    replicas: summary.replicas,
    ready: summary.ready,
    restoring: restoringNow,
    failed: summary.failedSlots.length,
    coldStarted: summary.coldStarted,
  };
}

function condition(
  type: ConditionType,
  status: ConditionStatus,
  reason: string,
  message: string,
  generation: number,
  previous: NodeStatus | undefined,
  now: Date,
): Condition {
  const before = previous?.conditions?.find((c) => c.type === type);
  return { type, status, reason, message, lastTransitionTime: transitionTime(before, status, now), observedGeneration: generation };
}

/**
 * kstatus's two "abnormal-true" conditions, present only while they hold (never both):
 *  - Reconciling while the agent works towards the spec (a restore window, waiting for replicas, a backoff);
 *  - Stalled when nothing will change without a change of spec or host: a permanent failure or
 *    spent attempts (Degraded, the machine's `Stalled` progress), or paused short of Ready.
 */
function kstatusCondition(
  input: Pick<NodeStatusInput, 'progress' | 'degraded' | 'paused' | 'summary'>,
  ready: boolean,
): { type: 'Reconciling' | 'Stalled'; reason: string; message: string } | undefined {
  const { progress, degraded, summary } = input;
  if (progress.status === 'True') return { type: 'Reconciling', reason: progress.reason, message: progress.message };
  if (progress.reason === 'Stalled') {
    return { type: 'Stalled', reason: degraded?.reason ?? 'Stalled', message: degraded?.message ?? progress.message };
  }
  if (input.paused && !ready) {
    return {
      type: 'Stalled',
      reason: 'Paused',
      message: `spec.paused is true with ${summary.ready}/${summary.desired} replicas ready: nothing changes until it is unpaused`,
    };
  }
  return undefined;
}

export function computeNodeStatus(input: NodeStatusInput): NodeStatus {
  const { summary, node, generation, previous, now } = input;
  const ready = allReady(summary);
  const readyMessage = `${summary.ready}/${summary.desired} replicas ready on node ${node}`;
  const kstatus = kstatusCondition(input, ready);
  // Not ready: say why in the reason `kubectl get crs` shows (the stall's cause when stalled).
  const notReadyReason = kstatus?.type === 'Stalled' ? kstatus.reason : input.paused ? 'Paused' : 'ReplicasNotReady';
  const readyCondition = ready
    ? condition('Ready', 'True', 'AllReplicasReady', readyMessage, generation, previous, now)
    : condition('Ready', 'False', notReadyReason, readyMessage, generation, previous, now);
  const progressing = condition('Progressing', input.progress.status, input.progress.reason, input.progress.message, generation, previous, now);
  const degraded = input.degraded
    ? condition('Degraded', 'True', input.degraded.reason, input.degraded.message, generation, previous, now)
    : condition('Degraded', 'False', 'AsExpected', 'no permanent failure', generation, previous, now);
  const abnormal = kstatus ? [condition(kstatus.type, 'True', kstatus.reason, kstatus.message, generation, previous, now)] : [];
  const counts = replicaCounts(summary, input.restoringNow);
  return {
    node,
    observedGeneration: generation,
    replicas: counts.replicas,
    readyReplicas: counts.ready,
    restoringReplicas: counts.restoring,
    failedReplicas: counts.failed,
    coldStartedReplicas: counts.coldStarted,
    conditions: [readyCondition, ...abnormal, progressing, degraded],
    ...(input.bootstrap ? { bootstrap: bootstrapStatus(input.bootstrap) } : {}),
    lastUpdateTime: kubeTime(now),
  };
}

/** Two node statuses that differ only in timestamps need no write. */
export function sameNodeStatus(a: NodeStatus | undefined, b: NodeStatus): boolean {
  if (!a) return false;
  const strip = (s: NodeStatus): unknown => ({
    ...s,
    lastUpdateTime: undefined,
    conditions: s.conditions?.map((c) => ({ ...c, lastTransitionTime: undefined })),
  });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
