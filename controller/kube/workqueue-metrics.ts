// CONTRACT between the work queue (controller/kube) and the metrics (controller/metrics): the
// queue reports through this sink; the metrics module implements it with the names Kubernetes
// controllers use (workqueue_depth, workqueue_adds_total, workqueue_retries_total,
// workqueue_queue_duration_seconds, workqueue_work_duration_seconds; label `name`).
export interface WorkQueueMetricsSink {
  /** An item was added (also counts merged duplicates). */
  added(queue: string): void;
  /** The number of items waiting now. */
  depth(queue: string, depth: number): void;
  /** An item was re-added with backoff after an error. */
  retried(queue: string): void;
  /** How long an item waited before a worker took it. */
  queued(queue: string, seconds: number): void;
  /** How long a worker spent on it. */
  worked(queue: string, seconds: number): void;
}

export const noopWorkQueueMetrics: WorkQueueMetricsSink = {
  added() {},
  depth() {},
  retried() {},
  queued() {},
  worked() {},
};
