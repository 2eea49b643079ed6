// What each FailureReason means to whoever meets it: the one table every decision about a failure
// reads (the engine's `transient` flag, the reconciler's retry / Degraded / attempt counting).
// Exhaustive on purpose: a new reason does not compile until its row says what it means.

import type { FailureReason } from './types.js';

export interface FailureMeaning {
  /** Worth retrying the same call soon: the cause is likely gone by then (EngineError.transient). */
  retry: boolean;
  /** No retry can fix it: only a spec change or a change on the host (seen by a probe) helps. */
  permanent: boolean;
  /** About the checkpoint source: a probe re-checks the source before spending a restore. */
  source: boolean;
  /** Counts against the slot's restore attempts (not when the engine, not the restore, failed). */
  spendsAttempt: boolean;
  /** We cancelled it: no failure of anything, never acted on. */
  aborted: boolean;
}

const RETRY: FailureMeaning = { retry: true, permanent: false, source: false, spendsAttempt: true, aborted: false };
const PERMANENT: FailureMeaning = { retry: false, permanent: true, source: false, spendsAttempt: true, aborted: false };
const SOURCE: FailureMeaning = { ...PERMANENT, source: true };
/** Neither retried at once nor permanent: the slot spends its attempts, then falls back. */
const SPEND: FailureMeaning = { retry: false, permanent: false, source: false, spendsAttempt: true, aborted: false };

export const FAILURE_POLICY: Readonly<Record<FailureReason, FailureMeaning>> = {
  RestoreRace: RETRY,
  RestoreTimeout: RETRY,
  CheckpointNotFound: SOURCE,
  CheckpointNotAllowed: SOURCE,
  ImageNotFound: PERMANENT,
  CriuFailed: SPEND,
  DiskFull: RETRY,
  // The engine, not the restore, failed: retried, and the slot keeps its attempts.
  EngineUnavailable: { ...RETRY, spendsAttempt: false },
  NameConflict: RETRY,
  InvalidSpec: PERMANENT,
  // The node's operator caps this host; a later probe finds room once replicas go away.
  QuotaExceeded: PERMANENT,
  // The app never got ready, or CRIU could not checkpoint it: a retry cold-starts it again, so only
  // the Degraded probe's backoff (or a spec change) tries once more, never a storm of cold starts.
  BootstrapFailed: PERMANENT,
  ReadinessTimeout: SPEND,
  PostRestoreFailed: SPEND,
  Aborted: { retry: false, permanent: false, source: false, spendsAttempt: false, aborted: true },
  // A bug or an unexpected transport error: retried with backoff, bounded by the slot's attempts.
  Unknown: RETRY,
};

/** The reason's row; a reason outside the closed set (e.g. a Degraded summary) means nothing. */
export function meaningOf(reason: string): FailureMeaning | undefined {
  return Object.hasOwn(FAILURE_POLICY, reason) ? FAILURE_POLICY[reason as FailureReason] : undefined;
}
