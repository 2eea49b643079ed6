// Typed engine errors and the classifier that maps real Docker / containerd / CRIU / transport
// failures onto the closed set of FailureReasons. Every pattern below comes from an error this
// engine provoked for real against Docker 26.1 / containerd 1.7 / CRIU 4.1; the messages are kept
// as fixtures in test/unit/engine/errors.test.ts.

import { FAILURE_POLICY } from './failure-policy.js';
import type { FailureReason } from './types.js';

export class EngineError extends Error {
  readonly code: FailureReason;
  readonly transient: boolean;

  constructor(code: FailureReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
    this.transient = FAILURE_POLICY[code].retry;
  }
}

/** The fields of a dockerode / Node error that carry meaning; everything else is ignored. */
export interface ErrorShape {
  statusCode?: number;
  /** Node system error code (ECONNREFUSED, ENOSPC, ...) */
  code?: string;
  name?: string;
  /** Node's failing system call (connect, write, ...) */
  syscall?: string;
  /** Docker's own message (dockerode puts the response body's `message` in `json.message`). */
  dockerMessage?: string;
  message: string;
}

export function errorShape(err: unknown): ErrorShape {
  if (typeof err !== 'object' || err === null) return { message: String(err) };
  const e = err as Record<string, unknown>;
  const json = e['json'];
  const jsonMessage =
    typeof json === 'object' && json !== null && typeof (json as Record<string, unknown>)['message'] === 'string'
      ? ((json as Record<string, unknown>)['message'] as string)
      : undefined;
  const shape: ErrorShape = { message: typeof e['message'] === 'string' ? e['message'] : JSON.stringify(err) };
  if (typeof e['statusCode'] === 'number') shape.statusCode = e['statusCode'];
  if (typeof e['code'] === 'string') shape.code = e['code'];
  if (typeof e['name'] === 'string') shape.name = e['name'];
  if (typeof e['syscall'] === 'string') shape.syscall = e['syscall'];
  if (jsonMessage !== undefined) shape.dockerMessage = jsonMessage;
  return shape;
}

/** What the engine was doing; it turns a bare reason into a message a person can act on. */
export interface ErrorContext {
  /** e.g. "restore of default/web replica a1 (attempt 2)" */
  operation: string;
  image?: string;
  checkpoint?: string;
  dockerHost?: string;
}

// ENOENT counts only from connect() (a missing socket), never from a file operation.
const TRANSPORT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNABORTED']);

function isTransportError(s: ErrorShape): boolean {
  if (s.statusCode !== undefined || s.code === undefined) return false;
  return TRANSPORT_CODES.has(s.code) || (s.code === 'ENOENT' && s.syscall === 'connect');
}

interface Rule {
  reason: FailureReason;
  test: (s: ErrorShape, text: string) => boolean;
  advice: (ctx: ErrorContext) => string;
}

// Order matters: the first rule that matches wins (e.g. ENOSPC inside a CRIU failure is DiskFull).
const RULES: Rule[] = [
  {
    reason: 'DiskFull',
    test: (s, t) => s.code === 'ENOSPC' || /no space left on device/i.test(t),
    advice: () =>
      'the disk is full: free space on the Docker data root and containerd temp dir (leaked ctrd-checkpoint copies are reclaimed by the engine sweep)',
  },
  {
    reason: 'RestoreRace',
    test: (_s, t) => /commit failed: content sha256:[0-9a-f]+[^]*already exists/i.test(t),
    advice: () =>
      'two restores uploaded identical checkpoint copies to containerd at once; a retry succeeds (the engine makes each copy unique, so this should be rare)',
  },
  {
    reason: 'RestoreTimeout',
    test: (_s, t) => /context deadline exceeded/i.test(t),
    advice: () => 'the engine did not finish in time; too many restores at once or an overloaded host, retry later',
  },
  {
    reason: 'EngineUnavailable',
    test: (s, t) => isTransportError(s) || /socket hang up|connect ECONNREFUSED|Cannot connect to the Docker daemon/i.test(t),
    advice: (c) =>
      `the Docker engine${c.dockerHost ? ` at ${c.dockerHost}` : ''} is not reachable or went away mid-request; check that dockerd runs (hack/engine-up.sh)`,
  },
  {
    reason: 'ImageNotFound',
    test: (s, t) => /No such image/i.test(t) || (s.statusCode === 404 && /image/i.test(t) && !/container/i.test(t)),
    advice: (c) => `the image${c.image ? ` ${c.image}` : ''} is not on this node; load it first (docker load / docker import), the engine never pulls`,
  },
  {
    reason: 'CheckpointNotFound',
    test: (_s, t) => /checkpoint \S+ does not exist for container/i.test(t),
    advice: (c) => `the checkpoint${c.checkpoint ? ` ${c.checkpoint}` : ''} is missing; take it again with docker checkpoint create`,
  },
  {
    reason: 'CriuFailed',
    test: (_s, t) => /criu failed|OCI runtime restore failed/i.test(t),
    advice: () =>
      'CRIU could not restore the checkpoint (corrupt or incomplete images, or a template that differs from the checkpointed container); see the restore.log named in the message, and take a new checkpoint',
  },
  {
    reason: 'NameConflict',
    test: (s, t) => s.statusCode === 409 && /is already in use/i.test(t),
    advice: () => 'a container with this name already exists; the next attempt uses a new name',
  },
  {
    reason: 'InvalidSpec',
    test: (s) => s.statusCode === 400,
    advice: () => 'Docker rejected the container settings derived from spec.template; fix the template',
  },
];

/** Map any error from Docker, containerd, CRIU or the transport to a typed EngineError. */
export function classifyError(err: unknown, ctx: ErrorContext): EngineError {
  if (err instanceof EngineError) return err;
  const shape = errorShape(err);
  const text = shape.dockerMessage ?? shape.message;
  for (const rule of RULES) {
    if (rule.test(shape, text)) {
      return new EngineError(rule.reason, `${ctx.operation} failed: ${text.trim()} (${rule.advice(ctx)})`, { cause: err });
    }
  }
  return new EngineError('Unknown', `${ctx.operation} failed: ${text.trim()}`, { cause: err });
}

/** Docker answered 404 for a container (as opposed to an image). */
export function isNoSuchContainer(err: unknown): boolean {
  const s = errorShape(err);
  return s.statusCode === 404 && /no such container/i.test(s.dockerMessage ?? s.message);
}

/** Docker answered 304 (already started / already stopped). */
export function isNotModified(err: unknown): boolean {
  return errorShape(err).statusCode === 304;
}
