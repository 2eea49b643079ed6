// A typed error for every failed call to the apiserver, so callers branch on `code` and people read
// `message`. Converts client-node's ApiException (HTTP errors), the Watch's plain errors with
// `statusCode`, and network errors from fetch.

export type ApiErrorCode = 'NotFound' | 'Conflict' | 'Gone' | 'Forbidden' | 'Unavailable' | 'Invalid' | 'Unknown';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    /** HTTP status, or undefined when no response came back (network error). */
    readonly status: number | undefined,
    /** The apiserver's Status.reason when it sent one, e.g. "AlreadyExists". */
    readonly reason?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Worth retrying the same request later (apiserver overloaded, restarting or unreachable). */
  get retryable(): boolean {
    return this.code === 'Unavailable';
  }
}

export function isApiError(err: unknown, code?: ApiErrorCode): err is ApiError {
  return err instanceof ApiError && (code === undefined || err.code === code);
}

export function codeForStatus(status: number): ApiErrorCode {
  if (status === 404) return 'NotFound';
  if (status === 409) return 'Conflict';
  if (status === 410) return 'Gone';
  if (status === 401 || status === 403) return 'Forbidden';
  if (status === 400 || status === 422) return 'Invalid';
  if (status === 429 || status >= 500) return 'Unavailable';
  return 'Unknown';
}

// Node's network error codes that mean "the apiserver cannot be reached right now".
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

interface StatusBody {
  message?: unknown;
  reason?: unknown;
}

/**
 * Turns whatever a client-node call threw into an ApiError; `what` says what was being done, e.g.
 * "get checkpointreplicasets default/web", and opens the message.
 */
export function toApiError(err: unknown, what: string): ApiError {
  if (err instanceof ApiError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as Record<string, unknown>;
  // client-node ApiException: numeric `code` = HTTP status, `body` = the apiserver's Status (parsed
  // JSON, or a string). The Watch's errors carry `statusCode` instead.
  const status = typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined) {
    const body = parseBody(e.body);
    const detail = typeof body?.message === 'string' && body.message !== '' ? body.message : err instanceof Error ? firstLine(err.message) : `HTTP ${status}`;
    const reason = typeof body?.reason === 'string' ? body.reason : undefined;
    return new ApiError(codeForStatus(status), `${what}: ${detail} (HTTP ${status})`, status, reason, { cause: err });
  }
  const netCode = typeof e.code === 'string' ? e.code : undefined;
  const causeCode = nestedCode(e.cause);
  if ((netCode && NETWORK_CODES.has(netCode)) || (causeCode && NETWORK_CODES.has(causeCode))) {
    const message = err instanceof Error ? err.message : String(err);
    return new ApiError('Unavailable', `${what}: apiserver unreachable: ${message}`, undefined, undefined, {
      cause: err,
    });
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'FetchError')) {
    return new ApiError('Unavailable', `${what}: request failed: ${err.message}`, undefined, undefined, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError('Unknown', `${what}: ${message}`, undefined, undefined, { cause: err });
}

function parseBody(body: unknown): StatusBody | undefined {
  if (typeof body === 'string') {
    try {
      const parsed: unknown = JSON.parse(body);
      return typeof parsed === 'object' && parsed !== null ? parsed : { message: body };
    } catch {
      return { message: body };
    }
  }
  return typeof body === 'object' && body !== null ? body : undefined;
}

function nestedCode(cause: unknown): string | undefined {
  if (typeof cause === 'object' && cause !== null && typeof (cause as { code?: unknown }).code === 'string') {
    return (cause as { code: string }).code;
  }
  return undefined;
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0] ?? s;
}
