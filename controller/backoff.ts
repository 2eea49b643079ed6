// The agent's one backoff: exponential, capped, optionally jittered. Pure: the random source is a
// parameter. Without jitter it is deterministic, so a per-resource retry schedule (the reconcile
// machine's) can be stated exactly; the work queue and the informers add jitter where many retry together.

export interface BackoffPolicy {
  /** Delay after the first failure. */
  initialMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** Growth per consecutive failure; 2 unless told. */
  factor?: number;
  /**
   * Fraction of the delay that is randomised, 0..1: with 0.2 the delay is drawn from
   * [0.8 d, d]. Spreads the retries of many agents that lost the apiserver at the same moment.
   */
  jitter?: number;
}

/**
 * Delay before retry number `failures` (1 = after the first failure). Never above maxMs, never
 * below 0; failures < 1 means no delay.
 */
export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  if (failures < 1) return 0;
  const factor = policy.factor ?? 2;
  // Cap the exponent so huge failure counts cannot overflow to Infinity/NaN.
  const exponent = Math.min(failures - 1, 64);
  const raw = Math.min(policy.maxMs, policy.initialMs * factor ** exponent);
  const jitter = Math.min(Math.max(policy.jitter ?? 0, 0), 1);
  const delay = raw * (1 - jitter * random());
  return Math.max(0, Math.round(delay));
}

export function validateBackoff(policy: BackoffPolicy, field: string): void {
  if (!(policy.initialMs > 0)) throw new RangeError(`${field}.initialMs must be > 0, got ${policy.initialMs}`);
  if (!(policy.maxMs >= policy.initialMs)) {
    throw new RangeError(`${field}.maxMs must be >= initialMs (${policy.initialMs}), got ${policy.maxMs}`);
  }
  if (policy.factor !== undefined && !(policy.factor >= 1)) {
    throw new RangeError(`${field}.factor must be >= 1, got ${policy.factor}`);
  }
  if (policy.jitter !== undefined && !(policy.jitter >= 0 && policy.jitter <= 1)) {
    throw new RangeError(`${field}.jitter must be within 0..1, got ${policy.jitter}`);
  }
}
