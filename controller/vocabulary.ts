// What kube/ and reconcile/ both speak, defined once: the reference to a resource, its queue key,
// the ports the reconciler calls and the kube layer implements, and canonical JSON. (The cap of 10
// restores is api/schema.ts's MAX_CONCURRENT_RESTORES; the condition transition rule is
// api/conditions.ts's transitionTime.)

import type { NodeStatus } from './api/types.js';

/** The resource a call is about, and the generation of its spec the caller is acting on. */
export interface ResourceRef {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
}

/** The queue key of a namespaced object, also how logs and metrics name a resource. */
export function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Splits a queue key; throws a clear error on a malformed one. */
export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  if (slash <= 0 || slash === key.length - 1 || key.indexOf('/', slash + 1) !== -1) {
    throw new RangeError(`work queue key must be "namespace/name", got ${JSON.stringify(key)}`);
  }
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export type EventType = 'Normal' | 'Warning';

/** Writes THIS node's entry of status.nodes; the kube layer coalesces and aggregates over nodes. Never rejects for API errors. */
export interface StatusPort {
  report(ref: ResourceRef, node: NodeStatus): Promise<void>;
}

/** Records a core/v1 Event on the resource. Must not throw (the kube recorder logs failures). */
export interface EventsPort<Reason extends string = string> {
  record(ref: ResourceRef, type: EventType, reason: Reason, message: string): void;
}

/** This node's finalizer on a resource; the kube layer owns the finalizer string. */
export interface FinalizerPort {
  /** Adds this node's finalizer before the first container is created (idempotent). */
  ensure(ref: ResourceRef): Promise<void>;
  /** Removes it once every container of this node for the resource is gone. */
  release(ref: ResourceRef): Promise<void>;
}

/**
 * JSON with object keys sorted at every level and undefined members left out, so two documents
 * that mean the same thing serialise to the same text whatever order their keys came in. Array
 * order is kept: it is meaningful (command, args). Feeds the template hash: keep it stable.
 */
export function canonicalJson(value: unknown): string {
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([, x]) => x !== undefined)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      );
    }
    return v;
  }) as string | undefined;
  return text ?? 'null';
}
