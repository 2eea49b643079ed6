// Structured JSON logs, one object a line on stderr, in the shape Kubernetes components use
// (ts, level, msg, then key/value fields). Levels below the configured one are dropped.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

/** What a component needs to log; the kube layer and the reconciler take this. */
export interface LogSink {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export interface Logger extends LogSink {
  /** A logger that adds these fields to every line. */
  with(fields: LogFields): Logger;
}

export const noopLogger: LogSink = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
export const LOG_LEVELS = Object.keys(rank) as LogLevel[];

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
  base: LogFields = {},
  now: () => Date = () => new Date(),
): Logger {
  const emit = (at: LogLevel, msg: string, fields?: LogFields): void => {
    if (rank[at] < rank[level]) return;
    write(JSON.stringify({ ts: now().toISOString(), level: at, msg, ...base, ...serialisable(fields) }));
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    with: (fields) => createLogger(level, write, { ...base, ...fields }, now),
  };
}

/** Errors do not survive JSON.stringify; keep their code and message. */
function serialisable(fields: LogFields | undefined): LogFields {
  if (!fields) return {};
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? { name: value.name, message: value.message, ...('code' in value ? { code: value.code } : {}) } : value;
  }
  return out;
}
