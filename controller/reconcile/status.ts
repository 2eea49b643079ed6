// This node's entry of status.nodes, computed purely from the plan's summary and the machine's
// phase. The kube layer aggregates node entries into the top-level status.

import { kubeTime } from '../api/conditions.js';
import type { Condition, ConditionStatus, ConditionType, NodeStatus } from '../api/types.js';
import type { PlanSummary } from './planner.js';
import type { ReplicaCounts } from './ports.js';

/** Progressing reasons (Progressing is True while work remains, False at rest). */
export type ProgressReason =
  | 'Restoring'
  | 'ScalingDown'
  | 'RollingUpdate'
  | 'WaitingForReplicas'
  | 'BackingOff'
  | 'Converged'
  | 'Paused'
  | 'Stalled'
  | 'NodeUnknown';

export interface Progress {
  status: ConditionStatus;
  reason: ProgressReason;
  message: string;
}

export interface DegradedCause {
  /** A FailureReason (CheckpointNotFound, ImageNotFound, CriuFailed, ...), RestoreFailed or InvalidSpec. */
  reason: string;
  message: string;
}

export interface NodeStatusInput {
  node: string;
  generation: number;
  summary: PlanSummary;
  /** Creates of the batch running right now. */
  restoringNow: number;
  paused: boolean;
  progress: Progress;
  degraded?: DegradedCause;
  previous?: NodeStatus;
  now: Date;
}

export function allReady(summary: PlanSummary): boolean {
  return (
    summary.ready === summary.desired &&
    summary.replicas === summary.desired &&
    summary.outdated === 0 &&
    summary.pending === 0 &&
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
  // lastTransitionTime moves only when the status flips (the Kubernetes convention).
  const lastTransitionTime = before && before.status === status ? before.lastTransitionTime : kubeTime(now);
  return { type, status, reason, message, lastTransitionTime, observedGeneration: generation };
}

export function computeNodeStatus(input: NodeStatusInput): NodeStatus {
  const { summary, node, generation, previous, now } = input;
  const ready = allReady(summary);
  const readyMessage = `${summary.ready}/${summary.desired} replicas ready on node ${node}`;
  const readyCondition = ready
    ? condition('Ready', 'True', 'AllReplicasReady', readyMessage, generation, previous, now)
    : condition('Ready', 'False', input.paused ? 'Paused' : 'ReplicasNotReady', readyMessage, generation, previous, now);
  const progressing = condition('Progressing', input.progress.status, input.progress.reason, input.progress.message, generation, previous, now);
  const degraded = input.degraded
    ? condition('Degraded', 'True', input.degraded.reason, input.degraded.message, generation, previous, now)
    : condition('Degraded', 'False', 'AsExpected', 'no permanent failure', generation, previous, now);
  const counts = replicaCounts(summary, input.restoringNow);
  return {
    node,
    observedGeneration: generation,
    replicas: counts.replicas,
    readyReplicas: counts.ready,
    restoringReplicas: counts.restoring,
    failedReplicas: counts.failed,
    coldStartedReplicas: counts.coldStarted,
    conditions: [readyCondition, progressing, degraded],
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
