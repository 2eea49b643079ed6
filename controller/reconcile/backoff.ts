// Exponential backoff, capped. Deterministic on purpose: a per-resource retry schedule that tests
// can state exactly; the work queue adds jitter where many keys retry together.

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** Delay before retry number `attempt` (1-based): base, 2*base, 4*base, ... capped at max. */
export function backoffDelay(policy: BackoffPolicy, attempt: number): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
}
