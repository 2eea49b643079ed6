// The ports the reconciler talks through. Everything outside this folder (Docker, the apiserver,
// Prometheus) is reached only via these small interfaces, so the reconcile logic is testable with
// fakes and a simulated clock.

import type { RestoreEngine } from '../engine/types.js';
import type { EventsPort as SharedEventsPort, FinalizerPort, ResourceRef, StatusPort } from '../vocabulary.js';

export type { EventType, FinalizerPort, ResourceRef, StatusPort } from '../vocabulary.js';

/** Records a Kubernetes Event on the resource, with one of the reconciler's reasons. */
export type EventsPort = SharedEventsPort<EventReason>;

/** The few Event reasons the reconciler emits (CamelCase, stable: people grep for them). */
export type EventReason =
  /** A restore window opened (once per window, not per replica). */
  'RestoresStarted' | 'RestoresFinished' | 'RestoreFailed' | 'FallbackUsed' | 'RemoveFailed' | 'Degraded' | 'Recovered';

export type { LogFields } from '../log.js';
import type { LogSink as Logger } from '../log.js';

/** The resting state a reconcile call ended in (also the label value of the reconcile metric). */
export type ReconcileOutcome = 'converged' | 'waiting' | 'backingOff' | 'degraded' | 'paused' | 'deleted' | 'stopped' | 'error';

export interface ReplicaCounts {
  desired: number;
  replicas: number;
  ready: number;
  restoring: number;
  failed: number;
  coldStarted: number;
}

/** Optional hooks for Prometheus; one small interface so the metrics module can implement it whole. */
export interface ReconcileMetricsPort {
  /** One reconcile call finished, in `seconds` of wall time. */
  reconciled(outcome: ReconcileOutcome, seconds: number): void;
  /** A generation went from first observed to Ready in `seconds`. */
  converged(ref: ResourceRef, seconds: number): void;
  /** This node's replica counts for the resource, whenever they are recomputed. */
  replicaCounts(ref: ResourceRef, node: string, counts: ReplicaCounts): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export interface ReconcilePorts {
  engine: RestoreEngine;
  status: StatusPort;
  events: EventsPort;
  finalizer: FinalizerPort;
  logger: Logger;
  metrics?: ReconcileMetricsPort;
}
