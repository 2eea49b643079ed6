// Typed errors of the metrics module: `code` for programs, `message` for people.

export type MetricsErrorCode =
  /** A label value is empty or not a string (labels must stay bounded and meaningful). */
  | 'InvalidLabel'
  /** A number is negative, NaN or infinite where a count, size or duration was expected. */
  | 'InvalidValue'
  /** The metrics listen address cannot be parsed. */
  | 'InvalidAddress'
  /** The metrics server could not bind its address (in use, not permitted, unknown host). */
  | 'ListenFailed';

export class MetricsError extends Error {
  override readonly name = 'MetricsError';
  constructor(
    readonly code: MetricsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
