// The agent's metrics, defined once. createMetrics() builds the registry from this table and
// docs/metrics.md is rendered from the registry it builds, so names, types, labels and help texts
// cannot drift between the code, the docs and the alert rules (whose tests scrape these names).
//
// Names are fixed by issue 6: dashboards and alerts rely on them. Labels are bounded: no container
// ids, `reason` is the closed FailureReason set or 'none', `result` a closed set.

import { FAILURE_REASONS, type FailureReason } from '../engine/types.js';
import type { ReconcileOutcome } from '../reconcile/ports.js';

type MetricKind = 'counter' | 'gauge' | 'histogram';

export interface MetricDefinition {
  readonly name: string;
  readonly kind: MetricKind;
  /** One line, shown as HELP in the exposition. */
  readonly help: string;
  readonly labels: readonly string[];
  /** Upper bounds in seconds (histograms only). */
  readonly buckets?: readonly number[];
  /** What a person reading docs/metrics.md needs beyond the help line: when it moves, how to use it. */
  readonly meaning: string;
}

/** Every FailureReason: the closed set of `reason` label values. */
export { FAILURE_REASONS };

/** The `reason` label: a FailureReason for failures, 'none' for successes. */
export type RestoreReasonLabel = FailureReason | 'none';
/**
 * The `result` label of crs_reconcile_total: the resting state a reconcile ended in, as the
 * reconciler reports it (controller/reconcile/ports.ts ReconcileOutcome), checked exhaustive below.
 */
export const RECONCILE_RESULTS = [
  'converged',
  'waiting',
  'backingOff',
  'degraded',
  'paused',
  'deleted',
  'stopped',
  'error',
] as const satisfies readonly ReconcileOutcome[];
export type ReconcileResult = ReconcileOutcome;
type MissingOutcome = Exclude<ReconcileOutcome, (typeof RECONCILE_RESULTS)[number]>;
// Fails to compile when the reconciler gains an outcome that is not listed above.
const outcomesAreExhaustive: [MissingOutcome] extends [never] ? true : MissingOutcome = true;
void outcomesAreExhaustive;

/** 0.1 s .. 10 min: a small checkpoint restores in well under a second, a large one in minutes. */
const RESTORE_DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600] as const;
/** 1 s .. 1 h: a rollout of many replicas takes minutes. */
const CONVERGE_DURATION_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600] as const;
/** 5 ms .. 10 min: one reconcile may wait for a whole batch of restores. */
const RECONCILE_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] as const;
/** The buckets client-go's work queue uses (10 ns .. 10 s, times 10), so existing dashboards fit. */
const WORKQUEUE_DURATION_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10] as const;

const RESOURCE_NODE = ['namespace', 'name', 'node'] as const;

export const CATALOG = {
  replicasDesired: {
    name: 'crs_replicas_desired',
    kind: 'gauge',
    help: 'Replicas a CheckpointReplicaSet asks for on this node.',
    labels: RESOURCE_NODE,
    meaning: "spec.replicas of the resource as this node's agent last observed it (replicas are per node).",
  },
  replicasReady: {
    name: 'crs_replicas_ready',
    kind: 'gauge',
    help: 'Replicas of a CheckpointReplicaSet running and ready on this node.',
    labels: RESOURCE_NODE,
    meaning:
      'Containers owned by the resource (by owner-uid label) that run, restored from the checkpoint or cold-started by the fallback. Compare with crs_replicas_desired.',
  },
  replicasRestoring: {
    name: 'crs_replicas_restoring',
    kind: 'gauge',
    help: 'Replicas of a CheckpointReplicaSet being restored on this node.',
    labels: RESOURCE_NODE,
    meaning: 'Restores of this resource in flight or queued for the per-host limiter right now.',
  },
  replicasFailed: {
    name: 'crs_replicas_failed',
    kind: 'gauge',
    help: 'Replicas of a CheckpointReplicaSet that spent their restore attempts on this node.',
    labels: RESOURCE_NODE,
    meaning: 'Replica slots left failed after restore.maxAttempts with fallback None. Non-zero means the resource is Degraded on this node.',
  },
  restoresTotal: {
    name: 'crs_restores_total',
    kind: 'counter',
    help: 'Restore attempts finished, by result and failure reason.',
    labels: ['namespace', 'name', 'result', 'reason'],
    meaning:
      'One increment per finished restore attempt (a retried replica counts once per attempt). result is success or failure; reason is the engine\'s FailureReason for failures and none for successes. The failure ratio is rate(crs_restores_total{result="failure"}[10m]) / rate(crs_restores_total[10m]).',
  },
  restoreDuration: {
    name: 'crs_restore_duration_seconds',
    kind: 'histogram',
    help: 'Time one restore attempt took, from a limiter slot to a running container or a failure.',
    labels: [],
    buckets: RESTORE_DURATION_BUCKETS,
    meaning:
      'Observed for successes and failures alike, without the time spent waiting for a limiter slot (an attempt cancelled while waiting, reason Aborted, observes its wait). histogram_quantile(0.9, rate(crs_restore_duration_seconds_bucket[5m])) is the p90.',
  },
  restoresInFlight: {
    name: 'crs_restores_in_flight',
    kind: 'gauge',
    help: "Restores running right now on this node's Docker host.",
    labels: ['node'],
    meaning: 'Never above crs_restore_concurrency_limit: the per-host limiter holds the rest back.',
  },
  restoreConcurrencyLimit: {
    name: 'crs_restore_concurrency_limit',
    kind: 'gauge',
    help: "Most restores this node's agent runs at once on its Docker host.",
    labels: ['node'],
    meaning: "The agent's per-host cap (at most 10, where containerd's own limit begins).",
  },
  bootstrapDuration: {
    name: 'crs_bootstrap_duration_seconds',
    kind: 'histogram',
    help: 'Time one bootstrap took on this node: cold start, readiness, warm-up and checkpoint (spec.checkpoint.bootstrap).',
    labels: ['outcome'],
    buckets: CONVERGE_DURATION_BUCKETS,
    meaning:
      'outcome is success or failure (BootstrapFailed, or cut short). One observation per cold start made to be checkpointed; a failed bootstrap is retried only on the Degraded probe backoff (30 s doubling to 10 min), so failures here stay few.',
  },
  convergeDuration: {
    name: 'crs_converge_duration_seconds',
    kind: 'histogram',
    help: 'Time from a new generation of a CheckpointReplicaSet observed to all its replicas ready on this node.',
    labels: [],
    buckets: CONVERGE_DURATION_BUCKETS,
    meaning: 'One observation per generation that reached Ready on this node: the rollout time a user waits for.',
  },
  reconcileTotal: {
    name: 'crs_reconcile_total',
    kind: 'counter',
    help: 'Reconciles of CheckpointReplicaSets finished, by result.',
    labels: ['result'],
    meaning:
      'result is the state the reconcile ended in: converged, waiting (restores still running), backingOff (retrying after transient failures), degraded (a permanent failure, e.g. CheckpointNotFound), paused, deleted, stopped (agent shutting down) or error (the reconcile itself failed; the work queue retries the key with backoff). Alerts use result="error".',
  },
  reconcileDuration: {
    name: 'crs_reconcile_duration_seconds',
    kind: 'histogram',
    help: 'Time one reconcile of a CheckpointReplicaSet took.',
    labels: [],
    buckets: RECONCILE_DURATION_BUCKETS,
    meaning: 'A reconcile may wait for a whole batch of restores, so seconds to minutes are normal during a rollout.',
  },
  workqueueDepth: {
    name: 'workqueue_depth',
    kind: 'gauge',
    help: 'Current depth of the work queue.',
    labels: ['name'],
    meaning: 'Keys waiting for a worker, named as client-go names it so existing work queue dashboards work.',
  },
  workqueueAdds: {
    name: 'workqueue_adds_total',
    kind: 'counter',
    help: 'Total number of adds handled by the work queue.',
    labels: ['name'],
    meaning: 'Every add, including ones merged into a key already waiting.',
  },
  workqueueRetries: {
    name: 'workqueue_retries_total',
    kind: 'counter',
    help: 'Total number of retries handled by the work queue.',
    labels: ['name'],
    meaning: 'Keys re-added with per-key exponential backoff after a failed reconcile.',
  },
  workqueueQueueDuration: {
    name: 'workqueue_queue_duration_seconds',
    kind: 'histogram',
    help: 'How long in seconds an item stays in the work queue before being requested.',
    labels: ['name'],
    buckets: WORKQUEUE_DURATION_BUCKETS,
    meaning: 'Waiting time before a worker takes a key (client-go buckets).',
  },
  workqueueWorkDuration: {
    name: 'workqueue_work_duration_seconds',
    kind: 'histogram',
    help: 'How long in seconds processing an item from the work queue takes.',
    labels: ['name'],
    buckets: WORKQUEUE_DURATION_BUCKETS,
    meaning: 'Time a worker spends on one key (client-go buckets; reconciles longer than 10 s land in +Inf, see crs_reconcile_duration_seconds for those).',
  },
  checkpointCopiesReclaimedBytes: {
    name: 'crs_checkpoint_copies_reclaimed_bytes_total',
    kind: 'counter',
    help: 'Bytes of leaked checkpoint copies (containerd ctrd-checkpoint* directories) removed on this node.',
    labels: ['node'],
    meaning:
      'containerd leaves a full copy of the checkpoint on disk for every restore (containerd issue 10166); the agent removes them. Grows by about the checkpoint size per restore.',
  },
  diskHeadroom: {
    name: 'crs_disk_headroom_bytes',
    kind: 'gauge',
    help: 'Free bytes on the disks restores write to on this node.',
    labels: ['node'],
    meaning:
      'Polled from the engine. A batch briefly needs about 3 times the checkpoint size per concurrent restore; below that, restores wait or fail with DiskFull.',
  },
  hygieneIgnored: {
    name: 'crs_hygiene_ignored_total',
    kind: 'counter',
    help: 'Entries named like a leaked checkpoint copy that host hygiene left alone, by reason.',
    labels: ['node', 'reason'],
    meaning:
      "reason is marker_not_regular_file (a FIFO, device or symlink named like a marker), marker_too_large, folder_not_trusted (not owned by the agent's user or writable by group/other) or folder_too_deep. containerd never makes such entries: a rise means someone planted them under --containerd-tmp (see README Security model); the agent logs each at debug level.",
  },
  containerdTmpWorldWritable: {
    name: 'crs_containerd_tmp_world_writable',
    kind: 'gauge',
    help: '1 when the --containerd-tmp folder is writable by every user of the host, else 0.',
    labels: ['node'],
    meaning:
      'Checked at start. A world-writable folder (the host /tmp) lets any local user plant folders the agent must then refuse; give containerd a root-only XDG_RUNTIME_DIR (0700) and point --containerd-tmp there (README Security model).',
  },
  checkpointSize: {
    name: 'crs_checkpoint_size_bytes',
    kind: 'gauge',
    help: 'Size on disk of the checkpoint a CheckpointReplicaSet restores from on this node.',
    labels: RESOURCE_NODE,
    meaning:
      'Read whenever the agent checks the source or restores from it. Each concurrent restore briefly needs about 3 times this much free disk; the CrsDiskHeadroomLow alert compares crs_disk_headroom_bytes with crs_restore_concurrency_limit x 3 x the largest checkpoint on the node.',
  },
  buildInfo: {
    name: 'crs_build_info',
    kind: 'gauge',
    help: 'Always 1; labels carry the agent version and the Node.js version.',
    labels: ['version', 'node_version'],
    meaning: 'Join on it to see which version runs where, e.g. count by (version) (crs_build_info).',
  },
  nodeObjectPresent: {
    name: 'crs_node_object_present',
    kind: 'gauge',
    help: "1 while this agent's Node object exists in the API, 0 while it is missing.",
    labels: ['node'],
    meaning:
      'While 0, resources with a nodeSelector cannot be matched: the agent keeps their replicas as they are and creates or removes none (status: Progressing False, reason NodeUnknown) until the Node is back.',
  },
} as const satisfies Record<string, MetricDefinition>;
