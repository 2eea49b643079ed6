// Follows the Docker engine's event stream for replica containers (those carrying the OWNER_UID
// label), so a replica that dies, is killed or removed by hand is noticed in seconds rather than at
// the next full resync.
//
// The stream is a long-lived HTTP response (GET /events). When it breaks (the engine restarts, the
// socket errors) whatever happens until we are subscribed again is invisible: we report `lost` at
// once, resubscribe with backoff, and report `resumed` only once the new subscription stands, so the
// listener can re-list everything it knows and miss nothing in between (events after `resumed` come
// through the new stream).

import type Docker from 'dockerode';
import { OWNER_NAME, OWNER_NAMESPACE, OWNER_UID, REPLICA_ID } from '../api/labels.js';
import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import { systemClock, type Clock } from './clock.js';
import { errorShape } from './errors.js';
import type { ContainerAction, ContainerWatchEvent, ReplicaChange } from './types.js';

/** The container actions that can change what a replica is: everything else (exec, attach, ...) is noise. */
const WATCHED_ACTIONS: readonly ContainerAction[] = ['start', 'die', 'oom', 'destroy', 'health_status'];

export interface ContainerWatchOptions {
  /** Only getEvents is used: the stream's own failure tells whether the engine answers. */
  docker: Pick<Docker, 'getEvents'>;
  listener: (event: ContainerWatchEvent) => void;
  /** Delay before resubscribing after the n-th failure in a row: base doubling to max. Default 250 ms to 2 s. */
  retry?: BackoffPolicy;
  clock?: Clock;
}

export interface ContainerWatch {
  /** A subscription stands right now. */
  readonly connected: boolean;
  /** Ends the stream and the resubscribe loop; resolves once both are gone. */
  stop(): Promise<void>;
}

// Short: a failed subscribe on a dead socket costs nothing, and every second here is a second
// before an engine that came back gets its replicas restored.
const DEFAULT_RETRY: BackoffPolicy = { initialMs: 250, maxMs: 2_000 };

/** One line of /events as a ReplicaChange, or undefined for any event that is not one of ours. */
export function parseEventLine(line: string): ReplicaChange | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const e = raw as { Type?: unknown; Action?: unknown; Actor?: { ID?: unknown; Attributes?: Record<string, unknown> }; time?: unknown; timeNano?: unknown };
  if (e.Type !== 'container' || typeof e.Action !== 'string') return undefined;
  // Health events read "health_status: healthy"; the part after the colon is the detail.
  const [verb = '', ...rest] = e.Action.split(':');
  const action = WATCHED_ACTIONS.find((a) => a === verb.trim());
  const attributes = e.Actor?.Attributes ?? {};
  const uid = attributes[OWNER_UID];
  const id = e.Actor?.ID;
  if (!action || typeof uid !== 'string' || uid === '' || typeof id !== 'string') return undefined;
  const text = (key: string): string | undefined => (typeof attributes[key] === 'string' && attributes[key] !== '' ? attributes[key] : undefined);
  const at = typeof e.timeNano === 'number' ? new Date(e.timeNano / 1e6) : typeof e.time === 'number' ? new Date(e.time * 1000) : new Date(0);
  const detail = action === 'health_status' ? rest.join(':').trim() : action === 'die' ? text('exitCode') : undefined;
  const namespace = text(OWNER_NAMESPACE);
  const name = text(OWNER_NAME);
  const replicaId = text(REPLICA_ID);
  return {
    action,
    containerId: id,
    ownerUid: uid,
    ...(namespace ? { ownerNamespace: namespace } : {}),
    ...(name ? { ownerName: name } : {}),
    ...(replicaId ? { replicaId } : {}),
    ...(detail ? { detail } : {}),
    at,
  };
}

/** Starts following the stream at once; the listener must not throw (errors are swallowed). */
export function watchContainers(options: ContainerWatchOptions): ContainerWatch {
  const clock = options.clock ?? systemClock;
  const retry = options.retry ?? DEFAULT_RETRY;
  const stopping = new AbortController();
  const emit = guardedListener(options.listener);
  let connected = false;

  const loop = async (): Promise<void> => {
    let failures = 0;
    let lostAt: Date | undefined;
    while (!stopping.signal.aborted) {
      let why: string;
      try {
        const stream = await subscribe(options.docker, stopping.signal);
        connected = true;
        failures = 0;
        if (lostAt) {
          emit({ type: 'resumed', at: clock.now(), lostAt });
          lostAt = undefined;
        }
        why = await consumeEvents(stream, stopping.signal, emit);
      } catch (err) {
        why = errorShape(err).message;
      }
      connected = false;
      if (stopping.signal.aborted) break;
      if (!lostAt) {
        lostAt = clock.now();
        emit({ type: 'lost', at: lostAt, reason: why });
      }
      failures++;
      await clock.sleep(backoffDelay(retry, failures), stopping.signal).catch(() => undefined);
    }
  };

  const running = loop();
  return {
    get connected() {
      return connected;
    },
    async stop() {
      stopping.abort();
      await running;
    },
  };
}

/** The listener, made unable to break the stream: it owns its errors. */
function guardedListener(listener: (event: ContainerWatchEvent) => void): (event: ContainerWatchEvent) => void {
  return (event) => {
    try {
      listener(event);
    } catch {
      // The listener owns its errors; the stream must go on.
    }
  };
}

function subscribe(docker: Pick<Docker, 'getEvents'>, signal: AbortSignal): Promise<NodeJS.ReadableStream> {
  // A label filter without a value matches every container that carries the label at all.
  return docker.getEvents({
    filters: { type: ['container'], label: [OWNER_UID] },
    abortSignal: signal,
  } as Docker.GetEventsOptions);
}

/** Emits our replica changes from `stream`; resolves with why it ended (or `stopped` once `signal` aborts, destroying it). */
function consumeEvents(stream: NodeJS.ReadableStream, signal: AbortSignal, emit: (event: ContainerWatchEvent) => void): Promise<string> {
  return new Promise((resolve) => {
    let buffer = '';
    let done = false;
    const finish = (why: string): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onStop);
      resolve(why);
    };
    const onStop = (): void => {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      finish('stopped');
    };
    signal.addEventListener('abort', onStop, { once: true });
    stream.on('data', (chunk: Buffer | string) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        const change = line ? parseEventLine(line) : undefined;
        if (change) emit({ type: 'replica', change });
      }
    });
    stream.on('end', () => finish('the engine closed the event stream'));
    stream.on('close', () => finish('the event stream was closed'));
    stream.on('error', (err: unknown) => finish(errorShape(err).message));
  });
}
