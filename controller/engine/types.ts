// CONTRACT between the reconciler and the restore engine (everything Docker on one host).
// The engine work implements RestoreEngine in this folder; the reconciler depends only on this file.

import type { CheckpointSource, ContainerTemplate } from '../api/types.js';
import type { StartMode } from '../api/labels.js';

export interface ReplicaOwner {
  uid: string;
  namespace: string;
  name: string;
}

/** Everything needed to create one replica container. */
export interface ReplicaSpec {
  owner: ReplicaOwner;
  node: string;
  /** Stable slot id within the resource, [a-z0-9]{1,12}. */
  replicaId: string;
  /** 1-based; part of the container name so a retry never clashes with a leftover. */
  attempt: number;
  templateHash: string;
  template: ContainerTemplate;
  checkpoint: CheckpointSource;
}

export type ReplicaState = 'created' | 'running' | 'restarting' | 'paused' | 'exited' | 'dead' | 'removing';

/** A container the engine proved (by OWNER_UID label) to belong to a resource. */
export interface Replica {
  containerId: string;
  containerName: string;
  ownerUid: string;
  replicaId: string;
  attempt: number;
  templateHash: string;
  startMode: StartMode;
  state: ReplicaState;
  /**
   * Running, started by us from the checkpoint or (startMode 'cold') without it, and past its
   * post-restore hook and readiness probe (a replica this engine is still starting is not ready).
   */
  ready: boolean;
  createdAt: Date;
  /** Host ports Docker published for spec.template.ports (while it runs); absent without ports. */
  ports?: PublishedPort[];
}

/** A container port and the host port Docker gave it. */
export interface PublishedPort {
  containerPort: number;
  protocol: 'TCP' | 'UDP';
  hostPort: number;
}

/** The closed set of failure reasons (a metric label, a condition reason); what each means: failure-policy.ts. */
export const FAILURE_REASONS = [
  'RestoreRace',
  'RestoreTimeout',
  'CheckpointNotFound',
  'CheckpointNotAllowed',
  'ImageNotFound',
  'CriuFailed',
  'DiskFull',
  'EngineUnavailable',
  'NameConflict',
  'InvalidSpec',
  /** A host protection limit set by the node's operator (e.g. --max-replicas-per-host) is reached. */
  'QuotaExceeded',
  /** spec.template.readinessProbe did not pass within its bound (docs/serving.md). */
  'ReadinessTimeout',
  /** spec.template.postRestore exited non-zero or outlived its timeoutSeconds. */
  'PostRestoreFailed',
  /** spec.checkpoint.bootstrap: the cold replica never got ready within timeoutSeconds, or its checkpoint failed. */
  'BootstrapFailed',
  'Aborted',
  'Unknown',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** A Degraded condition's reason: a FailureReason, or slots that spent their attempts and fallback. */
export type DegradedReason = FailureReason | 'RestoreFailed';

/** Why host hygiene left an entry named like a leaked copy alone (a bounded metric label). */
export type HygieneIgnoredReason = 'marker_not_regular_file' | 'marker_too_large' | 'folder_not_trusted' | 'folder_too_deep';

export type EngineEvent =
  | { type: 'restore.queued'; owner: ReplicaOwner; replicaId: string; attempt: number; at: Date }
  | { type: 'restore.started'; owner: ReplicaOwner; replicaId: string; attempt: number; at: Date; inFlight: number }
  | {
      type: 'restore.succeeded';
      owner: ReplicaOwner;
      replicaId: string;
      attempt: number;
      containerId: string;
      at: Date;
      durationSeconds: number;
      inFlight: number;
    }
  | {
      type: 'restore.failed';
      owner: ReplicaOwner;
      replicaId: string;
      attempt: number;
      reason: FailureReason;
      transient: boolean;
      message: string;
      at: Date;
      durationSeconds: number;
      inFlight: number;
    }
  | { type: 'coldstart.succeeded'; owner: ReplicaOwner; replicaId: string; containerId: string; at: Date }
  | { type: 'replica.removed'; owner: ReplicaOwner | { uid: string }; containerId: string; at: Date }
  | { type: 'hygiene.reclaimed'; bytes: number; paths: number; at: Date }
  /** Something under containerd's tmp named like ours that the agent cannot prove it made (planted?). */
  | { type: 'hygiene.ignored'; reason: HygieneIgnoredReason; path: string; at: Date }
  /** The checkpoint a resource restores from was read (on every source check and restore): its size on disk. */
  | { type: 'checkpoint.sized'; owner: ReplicaOwner; bytes: number; at: Date }
  | { type: 'disk.waiting'; neededBytes: number; availableBytes: number; path: string; at: Date }
  /** spec.checkpoint.bootstrap: a cold replica is warming up to be checkpointed on this node. */
  | { type: 'bootstrap.started'; owner: ReplicaOwner; templateHash: string; at: Date }
  | { type: 'bootstrap.succeeded'; owner: ReplicaOwner; templateHash: string; bytes: number; durationSeconds: number; at: Date }
  | { type: 'bootstrap.failed'; owner: ReplicaOwner; templateHash: string; message: string; durationSeconds: number; at: Date };

/** This node's bootstrap checkpoint of one resource, as status.nodes[].bootstrap shows it. */
export interface BootstrapState {
  phase: 'Bootstrapping' | 'Ready' | 'Failed';
  templateHash: string;
  created?: Date;
  bytes?: number;
  message: string;
}

/** Container actions the engine follows for replicas (Docker's /events, type container). */
export type ContainerAction = 'start' | 'die' | 'oom' | 'destroy' | 'health_status';

/** Something happened to a container that carries the OWNER_UID label. */
export interface ReplicaChange {
  action: ContainerAction;
  containerId: string;
  ownerUid: string;
  ownerNamespace?: string;
  ownerName?: string;
  replicaId?: string;
  /** The exit code of a `die`, the status of a `health_status`. */
  detail?: string;
  at: Date;
}

/**
 * What the engine's container watch reports: a replica changed; the stream broke (`lost`: nothing
 * that happens until `resumed` is seen); subscribed again (`resumed`: re-list everything once).
 */
export type ContainerWatchEvent =
  { type: 'replica'; change: ReplicaChange } | { type: 'lost'; at: Date; reason: string } | { type: 'resumed'; at: Date; lostAt: Date };

export interface RestoreOptions {
  /** For the restore itself, counted from when it holds one of the host's slots. */
  timeoutMs: number;
  /** How long it may wait for a slot first (then RestoreTimeout, nothing started). Default timeoutMs. */
  queueTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface RestoreEngine {
  /** Replicas of one resource on this host: containers whose OWNER_UID label equals ownerUid. */
  listReplicas(ownerUid: string, signal?: AbortSignal): Promise<Replica[]>;
  /** Every container with an OWNER_UID label on this host (to find orphans of deleted resources). */
  listAllReplicas(signal?: AbortSignal): Promise<Replica[]>;
  /**
   * One restore attempt: create the container, place a unique copy of the checkpoint, start from it.
   * Waits for a slot of the per-host limiter first. Throws EngineError; on failure nothing half-made
   * is left behind (the container and its checkpoint copy are removed).
   */
  restoreReplica(spec: ReplicaSpec, options: RestoreOptions): Promise<Replica>;
  /** The ColdStart fallback: create and start the container without the checkpoint (START_MODE 'cold'). */
  coldStartReplica(spec: ReplicaSpec, options: RestoreOptions): Promise<Replica>;
  /** Stop and remove a container that carries ownerUid; refuses any other container. */
  removeReplica(ownerUid: string, containerId: string, signal?: AbortSignal): Promise<void>;
  /** Fails fast with a typed error when the source is missing or not allowed for this namespace. */
  checkSource(owner: ReplicaOwner, source: CheckpointSource, signal?: AbortSignal): Promise<void>;
  /**
   * Follow the engine's container events for replicas (start, die, oom, destroy, health_status),
   * resubscribing with backoff when the stream breaks; returns the function that stops it.
   */
  watchContainers(listener: (event: ContainerWatchEvent) => void): () => Promise<void>;
  /** Subscribe to engine events; returns the unsubscribe function. */
  onEvent(listener: (event: EngineEvent) => void): () => void;
  /** Restores in flight right now on this host, and the limit. */
  readonly inFlight: number;
  readonly concurrencyLimit: number;
  /** Remove leaked checkpoint copies of restores this engine finished or that a crash left; returns bytes reclaimed. */
  sweep(signal?: AbortSignal): Promise<number>;
  /** spec.checkpoint.bootstrap: the state of this node's checkpoint of the resource (undefined: none known). */
  bootstrapState?(ownerUid: string): BootstrapState | undefined;
  /**
   * Delete this node's bootstrap checkpoints of ownerUid except the one of keepTemplateHash (none
   * kept when undefined); returns bytes reclaimed. Never while that resource's bootstrap runs.
   */
  reclaimBootstrap?(ownerUid: string, keepTemplateHash?: string): Promise<number>;
  /** Owner uids that hold bootstrap checkpoints on this node (housekeeping of deleted resources). */
  bootstrapOwners?(): Promise<string[]>;
  /** Free bytes on the disks that restores write to. */
  diskHeadroomBytes(): Promise<number>;
  ping(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
