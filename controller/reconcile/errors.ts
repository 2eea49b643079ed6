// Typed errors of the reconciler, and the reading of engine errors into a FailureReason.

import { FAILURE_REASONS, TRANSIENT_REASONS, type FailureReason } from '../engine/types.js';

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

const FAILURE_REASON_SET: ReadonlySet<string> = new Set<string>(FAILURE_REASONS);

function isFailureReason(value: unknown): value is FailureReason {
  return typeof value === 'string' && FAILURE_REASON_SET.has(value);
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
      const transient = typeof fields.transient === 'boolean' ? fields.transient : TRANSIENT_REASONS.has(reason);
      return { reason, transient, message };
    }
    if ((error as { name?: unknown }).name === 'AbortError') return { reason: 'Aborted', transient: false, message };
  }
  return { reason: 'Unknown', transient: true, message };
}

/**
 * Reasons no retry can fix: only a spec change or a change on the host (seen by a later probe)
 * helps. The resource goes Degraded at once, without spending its attempts.
 */
export const PERMANENT_NOW: ReadonlySet<FailureReason> = new Set<FailureReason>([
  'CheckpointNotFound',
  'CheckpointNotAllowed',
  'ImageNotFound',
  'InvalidSpec',
  // The node's operator caps this host; a later probe finds room once replicas go away.
  'QuotaExceeded',
  // The app never got ready, or CRIU could not checkpoint it: a retry cold-starts it again, so only
  // the Degraded probe's backoff (or a spec change) tries once more, never a storm of cold starts.
  'BootstrapFailed',
]);

/** Reasons about the checkpoint source: a probe re-checks the source before spending a restore. */
export const SOURCE_REASONS: ReadonlySet<FailureReason> = new Set<FailureReason>(['CheckpointNotFound', 'CheckpointNotAllowed']);
