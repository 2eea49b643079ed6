// The reconcile core's public surface for main.ts and the end-to-end tests.
export { createReconciler } from './runner.js';
export type { Reconciler, ReconcilerOptions, ReconcileResult, OrphanCollection, RunnerClock } from './runner.js';
export type {
  ReconcilePorts,
  ResourceRef,
  StatusPort,
  EventsPort,
  EventReason,
  EventType,
  FinalizerPort,
  Logger,
  ReconcileMetricsPort,
  ReconcileOutcome,
  ReplicaCounts,
  Clock,
} from './ports.js';
export { ReconcileError, type ReconcileErrorCode } from './errors.js';
export { DEFAULT_MACHINE_OPTIONS, type MachineOptions } from './machine/types.js';
export { keyOf } from './desired.js';
