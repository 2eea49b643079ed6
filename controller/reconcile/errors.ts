// Typed errors of the reconciler, and the reading of engine errors into a FailureReason.

import { FAILURE_POLICY, meaningOf } from '../engine/failure-policy.js';
import type { FailureReason } from '../engine/types.js';

export type ReconcileErrorCode =
  /** The reconcile actor of a resource failed unexpectedly (a bug); the runner recreated it. */
  | 'ActorFailed'
  /** The runner is shutting down and takes no more work. */
  | 'Stopping'
  /** A value the reconciler was given cannot be used (the message names the field). */
  | 'InvalidInput';

export class ReconcileError extends Error {
  override readonly name = 'ReconcileError';
  constructor(
    readonly code: ReconcileErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function isFailureReason(value: unknown): value is FailureReason {
  return typeof value === 'string' && meaningOf(value) !== undefined;
}

/** Thrown by the prepare actor: which step failed (adding the finalizer, checking the source), and the engine's failure. */
export class PrepareFailure extends Error {
  override readonly name = 'PrepareFailure';
  constructor(
    readonly step: 'finalizer' | 'source',
    readonly failure: unknown,
  ) {
    super(`${step}: ${failure instanceof Error ? failure.message : String(failure)}`, { cause: failure });
  }
}

export interface ClassifiedFailure {
  reason: FailureReason;
  transient: boolean;
  message: string;
}

/**
 * Reads an error thrown by the engine. The engine throws EngineError with `code: FailureReason`
 * (and `transient`); anything else (a bug, a network error from dockerode) is 'Unknown', which is
 * transient: retried with backoff, bounded by maxAttempts, so an unexpected error cannot loop hot.
 */
export function classifyFailure(error: unknown): ClassifiedFailure {
  const message = error instanceof Error ? error.message : String(error);
  if (typeof error === 'object' && error !== null) {
    const fields = error as { code?: unknown; reason?: unknown; transient?: unknown };
    const reason = isFailureReason(fields.code) ? fields.code : isFailureReason(fields.reason) ? fields.reason : undefined;
    if (reason !== undefined) {
      const transient = typeof fields.transient === 'boolean' ? fields.transient : FAILURE_POLICY[reason].retry;
      return { reason, transient, message };
    }
    if ((error as { name?: unknown }).name === 'AbortError') return { reason: 'Aborted', transient: false, message };
  }
  return { reason: 'Unknown', transient: true, message };
}
