// Expectations (as in client-go's ReplicaSet controller): creates and removes this agent made that
// an observation may not reflect yet. The planner counts them so a stale list never makes it plan
// more than desired. Each expires after a TTL so a lost observation cannot wedge a slot forever.

import type { Replica } from '../engine/types.js';
import type { Expectations, PendingCreate, PendingRemove } from './planner.js';

export function settleExpectations(expectations: Expectations, observed: readonly Replica[], now: number, ttlMs: number): Expectations {
  const seen = new Set(observed.map((r) => r.containerId));
  return {
    creates: expectations.creates.filter((c) => !seen.has(c.containerId) && now - c.since < ttlMs),
    removes: expectations.removes.filter((r) => seen.has(r.containerId) && now - r.since < ttlMs),
  };
}

export function expectCreated(expectations: Expectations, created: readonly PendingCreate[]): Expectations {
  return { creates: [...expectations.creates, ...created], removes: expectations.removes };
}

export function expectRemoved(expectations: Expectations, removed: readonly PendingRemove[]): Expectations {
  return { creates: expectations.creates, removes: [...expectations.removes, ...removed] };
}
