// Small builders shared by the reconcile unit tests.

import type { Replica } from '../../../controller/engine/types.js';
import type { DesiredState, PlannerInput, SlotHistory } from '../../../controller/reconcile/planner.js';
import { NO_EXPECTATIONS } from '../../../controller/reconcile/planner.js';

export const HASH = 'aaaaaaaaaa';
export const OLD_HASH = 'bbbbbbbbbb';

export function desired(overrides: Partial<DesiredState> = {}): DesiredState {
  return {
    replicas: 3,
    templateHash: HASH,
    maxConcurrent: 10,
    maxAttempts: 3,
    fallback: 'None',
    paused: false,
    deleting: false,
    ...overrides,
  };
}

let counter = 0;

export function replica(replicaId: string, overrides: Partial<Replica> = {}): Replica {
  counter++;
  const attempt = overrides.attempt ?? 1;
  return {
    containerId: `c-${replicaId}-${attempt}-${overrides.templateHash ?? HASH}`,
    containerName: `web-${replicaId}-${attempt}`,
    ownerUid: 'uid-1',
    replicaId,
    attempt,
    templateHash: HASH,
    startMode: 'restore',
    state: 'running',
    ready: true,
    createdAt: new Date(1_700_000_000_000 + counter * 1000),
    ...overrides,
  };
}

/** `n` ready replicas with slot ids 0..n-1, created in slot order (the last is the newest). */
export function readyReplicas(n: number, overrides: Partial<Replica> = {}): Replica[] {
  return Array.from({ length: n }, (_, i) => replica(i.toString(36), { createdAt: new Date(1_700_000_000_000 + i * 1000), ...overrides }));
}

export function history(entries: Record<string, Partial<SlotHistory>>): Map<string, SlotHistory> {
  return new Map(Object.entries(entries).map(([id, h]) => [id, { templateHash: HASH, lastAttempt: 1, failedRestores: 1, coldStartFailed: false, ...h }]));
}

export function input(overrides: Partial<PlannerInput> = {}): PlannerInput {
  return {
    desired: desired(),
    observed: [],
    expectations: NO_EXPECTATIONS,
    history: new Map(),
    successfulRestores: 100,
    engineInFlight: 0,
    engineLimit: 10,
    canary: false,
    ...overrides,
  };
}
