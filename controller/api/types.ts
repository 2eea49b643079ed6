// The CheckpointReplicaSet API, group checkpoint.dev, version v1alpha1.
//
// CONTRACT (draft): these names and shapes are what the rest of the controller imports. The API
// work replaces this file with types derived from the single-source schema in ./schema.ts; the
// exported names and shapes below must stay as they are.

export const GROUP = 'checkpoint.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'CheckpointReplicaSet';
export const PLURAL = 'checkpointreplicasets';
export const FINALIZER = 'checkpoint.dev/containers';

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Exactly one of `container` (with `name`) or `path` is set (the schema enforces it). */
export interface CheckpointSource {
  /** Name or id of a container on the node that holds the checkpoint. */
  container?: string;
  /** The checkpoint's name on that container. */
  name?: string;
  /** Absolute host directory holding CRIU image files (under the agent's checkpoint root). */
  path?: string;
}

export interface EnvVar {
  name: string;
  value?: string;
}

export interface ResourceLimits {
  /** Kubernetes quantity, e.g. "512Mi". */
  memory?: string;
  /** Kubernetes quantity, e.g. "500m" or "2". */
  cpu?: string;
}

export interface ContainerTemplate {
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
  resources?: { limits?: ResourceLimits };
}

export type RestoreFallback = 'None' | 'ColdStart';

export interface RestorePolicy {
  /** Restores in flight at once on one node for this resource, 1..10. Default 10. */
  maxConcurrent: number;
  /** Per-restore timeout. Default 120. */
  timeoutSeconds: number;
  /** Attempts per replica before it counts as failed. Default 5. */
  maxAttempts: number;
  /** What to do once the attempts are spent. Default None. */
  fallback: RestoreFallback;
}

export interface CheckpointReplicaSetSpec {
  /** Replicas on EACH node the resource selects. Default 1. */
  replicas: number;
  checkpoint: CheckpointSource;
  template: ContainerTemplate;
  nodeSelector?: Record<string, string>;
  /** Defaults are filled by the apiserver (schema defaults), so these are always present once stored. */
  restore: RestorePolicy;
  paused?: boolean;
}

export type ConditionType = 'Ready' | 'Progressing' | 'Degraded';
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** One node's part of the status; a list-map keyed by `node` so agents never clobber each other. */
export interface NodeStatus {
  node: string;
  observedGeneration?: number;
  replicas: number;
  readyReplicas: number;
  restoringReplicas: number;
  failedReplicas: number;
  /** Ready replicas that run a cold start (fallback), not a restore. */
  coldStartedReplicas?: number;
  conditions?: Condition[];
  lastUpdateTime?: string;
}

export interface CheckpointReplicaSetStatus {
  observedGeneration?: number;
  replicas?: number;
  readyReplicas?: number;
  restoringReplicas?: number;
  failedReplicas?: number;
  conditions?: Condition[];
  nodes?: NodeStatus[];
  /** Label selector string for the scale subresource. */
  selector?: string;
}

export interface CheckpointReplicaSet {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: CheckpointReplicaSetSpec;
  status?: CheckpointReplicaSetStatus;
}
