// What the reconciler calls in the kube layer. The reconciler declares the same shapes in its own
// ports (controller/reconcile/ports.ts); these classes satisfy them structurally.

import type { NodeStatus } from '../api/types.js';

/** The resource a call is about, as the reconciler last saw it. */
export interface ResourceRef {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
}

export type EventType = 'Normal' | 'Warning';

export interface StatusReporter {
  /** Sets THIS node's entry in status.nodes (coalesced, conflict-safe). Never rejects for API errors. */
  report(ref: ResourceRef, node: NodeStatus): Promise<void>;
}

export interface EventRecorder {
  /** Records a core/v1 Event on the resource; never throws (failures are logged). */
  record(ref: ResourceRef, type: EventType, reason: string, message: string): void;
}

export interface FinalizerManager {
  /** Adds this node's finalizer (before the first container is created). */
  ensure(ref: ResourceRef): Promise<void>;
  /** Removes this node's finalizer (after all of this node's containers are gone). */
  release(ref: ResourceRef): Promise<void>;
}
