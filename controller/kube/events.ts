// Records core/v1 Events on CheckpointReplicaSets, visible in `kubectl describe crs`. Repeats are
// folded into one Event (count, lastTimestamp), a storm is rate-limited per object (see
// event-aggregator.ts), and record() never throws or blocks: writes run in the background, one at a
// time, from a bounded backlog; failures are logged and counted.

import { CoreV1Api, PatchStrategy, setHeaderOptions, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { API_VERSION, KIND } from '../api/types.js';
import { isApiError, toApiError } from './api-error.js';
import { EventAggregator, type AggregatorOptions } from './event-aggregator.js';
import { FIELD_MANAGER } from './client.js';
import { realClock, type Clock } from './clock.js';
import { noopLogger, type Logger } from './logger.js';
import type { EngineEvent } from '../engine/types.js';
import type { EventType, EventsPort, ResourceRef } from '../vocabulary.js';

const REPORTING_COMPONENT = 'crs-controller';
/** Longest message written; longer ones are cut (events.k8s.io's limit). */
const MAX_EVENT_MESSAGE = 1024;

/** The two calls the recorder makes (a port: unit tests pass a fake). */
export interface EventSink {
  create(namespace: string, event: CoreV1Event): Promise<CoreV1Event>;
  /** JSON merge patch of count / lastTimestamp / message. */
  patch(namespace: string, name: string, patch: { count: number; lastTimestamp: string; message: string }): Promise<CoreV1Event>;
}

export function createEventSink(kc: KubeConfig): EventSink {
  const api = kc.makeApiClient(CoreV1Api);
  return {
    async create(namespace, event) {
      try {
        return await api.createNamespacedEvent({ namespace, body: event, fieldManager: FIELD_MANAGER });
      } catch (err) {
        throw toApiError(err, `create event in ${namespace}`);
      }
    },
    async patch(namespace, name, body) {
      try {
        return await api.patchNamespacedEvent(
          { namespace, name, body, fieldManager: FIELD_MANAGER },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      } catch (err) {
        throw toApiError(err, `patch event ${namespace}/${name}`);
      }
    },
  };
}

export interface KubeEventRecorderOptions extends AggregatorOptions {
  sink: EventSink;
  /** This agent's node: reportingInstance and source.host. */
  node: string;
  component?: string;
  /** Events waiting to be written at most; more are dropped (and counted). Default 1000. */
  maxBacklog?: number;
  clock?: Clock;
  logger?: Logger;
}

export interface EventRecorderStats {
  created: number;
  /** Repeats written as count/lastTimestamp updates. */
  updated: number;
  /** Refused by the per-object rate limit or the backlog bound. */
  dropped: number;
  /** Writes the apiserver refused or that could not reach it. */
  failed: number;
  /** Calls with a bad type or reason (logged, not written). */
  invalid: number;
}

interface Job {
  ref: ResourceRef;
  type: EventType;
  reason: string;
  key: string;
  message: string;
  atMs: number;
}

const REASON = /^[A-Z][A-Za-z0-9]{0,127}$/;

export class KubeEventRecorder implements EventsPort {
  private readonly sink: EventSink;
  private readonly node: string;
  private readonly component: string;
  private readonly maxBacklog: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly aggregator: EventAggregator;
  private readonly backlog: Job[] = [];
  private draining: Promise<void> | undefined;
  private readonly stats_: EventRecorderStats = { created: 0, updated: 0, dropped: 0, failed: 0, invalid: 0 };

  constructor(options: KubeEventRecorderOptions) {
    if (!options.node) throw new RangeError('event recorder: node must not be empty');
    this.sink = options.sink;
    this.node = options.node;
    this.component = options.component ?? REPORTING_COMPONENT;
    this.maxBacklog = options.maxBacklog ?? 1000;
    this.clock = options.clock ?? realClock;
    this.logger = options.logger ?? noopLogger;
    this.aggregator = new EventAggregator(options);
  }

  record(ref: ResourceRef, type: EventType, reason: string, message: string): void {
    try {
      if ((type !== 'Normal' && type !== 'Warning') || !REASON.test(reason) || !ref?.uid || !ref.namespace || !ref.name) {
        this.stats_.invalid++;
        this.logger.error('event not recorded: type must be Normal or Warning, reason CamelCase, ref complete', {
          type,
          reason,
          resource: `${ref?.namespace}/${ref?.name}`,
        });
        return;
      }
      const text = truncate(message);
      const now = this.clock.now();
      const admission = this.aggregator.admit({ uid: ref.uid, type, reason, message: text }, now);
      const objectKey = `${ref.namespace}/${ref.name}`;
      if (!admission.admitted || this.backlog.length >= this.maxBacklog) {
        this.stats_.dropped++;
        if (this.aggregator.noteDropped(objectKey)) {
          this.logger.warn('event rate limit reached; dropping events for this resource', {
            resource: objectKey,
            reason,
            backlog: this.backlog.length,
          });
        }
        return;
      }
      this.aggregator.noteAdmitted(objectKey);
      this.backlog.push({ ref, type, reason, key: admission.key, message: admission.message, atMs: now });
      if (!this.draining) this.draining = this.drain();
    } catch (err) {
      // Recording an event must never break the caller.
      this.logger.error('event recorder failed', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Resolves when every admitted event has been written (or has failed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  stats(): Readonly<EventRecorderStats> {
    return { ...this.stats_ };
  }

  /** Entries in the aggregator's tables (bounded; for leak tests). */
  tableSizes(): ReturnType<EventAggregator['sizes']> {
    return this.aggregator.sizes();
  }

  private async drain(): Promise<void> {
    try {
      for (let job = this.backlog.shift(); job; job = this.backlog.shift()) {
        try {
          await this.write(job);
        } catch (err) {
          this.stats_.failed++;
          const apiErr = toApiError(err, 'record event');
          this.logger.warn('event not recorded', {
            resource: `${job.ref.namespace}/${job.ref.name}`,
            reason: job.reason,
            code: apiErr.code,
            error: apiErr.message,
          });
        }
      }
    } finally {
      this.draining = undefined;
    }
  }

  private async write(job: Job): Promise<void> {
    const seen = this.aggregator.lookup(job.key, job.atMs);
    const at = kubeTimestamp(job.atMs);
    if (seen) {
      try {
        const count = seen.count + 1;
        await this.sink.patch(job.ref.namespace, seen.name, { count, lastTimestamp: at, message: job.message });
        this.aggregator.remember(job.key, { ...seen, count, lastTimestampMs: job.atMs });
        this.stats_.updated++;
        return;
      } catch (err) {
        // The Event expired (events have a TTL) or was deleted: start a new one.
        if (!isApiError(err, 'NotFound')) throw err;
        this.aggregator.forget(job.key);
      }
    }
    const event = this.eventFor(job, at);
    let created: CoreV1Event;
    try {
      created = await this.sink.create(job.ref.namespace, event);
    } catch (err) {
      // A name clash (same object, same nanosecond, another agent): one retry with a new name.
      if (!isApiError(err, 'Conflict')) throw err;
      event.metadata = { ...event.metadata, name: eventName(job.ref.name, job.atMs) };
      created = await this.sink.create(job.ref.namespace, event);
    }
    this.aggregator.remember(job.key, {
      name: created.metadata?.name ?? event.metadata?.name ?? '',
      count: 1,
      firstTimestampMs: job.atMs,
      lastTimestampMs: job.atMs,
    });
    this.stats_.created++;
  }

  private eventFor(job: Job, at: string): CoreV1Event {
    const time = new Date(at);
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: eventName(job.ref.name, job.atMs), namespace: job.ref.namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: KIND,
        name: job.ref.name,
        namespace: job.ref.namespace,
        uid: job.ref.uid,
      },
      type: job.type,
      reason: job.reason,
      message: job.message,
      count: 1,
      firstTimestamp: time,
      lastTimestamp: time,
      source: { component: this.component, host: this.node },
      reportingComponent: this.component,
      reportingInstance: this.node,
    };
  }
}

/** `<object>.<hex time><random>`, like client-go's names, made unique across agents. */
function eventName(objectName: string, atMs: number): string {
  const base = objectName.slice(0, 200);
  return `${base}.${(BigInt(atMs) * 1_000_000n).toString(16)}${randomBytes(3).toString('hex')}`;
}

function kubeTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function truncate(message: string): string {
  const m = String(message ?? '');
  return m.length <= MAX_EVENT_MESSAGE ? m : `${m.slice(0, MAX_EVENT_MESSAGE - 3)}...`;
}

/**
 * The Event a bootstrap step of the engine is told with (spec.checkpoint.bootstrap): started, done
 * (with the checkpoint's size), failed (with the engine's or CRIU's message); undefined for others.
 */
export function bootstrapEventOf(event: EngineEvent): { type: EventType; reason: string; message: string } | undefined {
  const hash = (e: { templateHash: string }): string => `template ${e.templateHash}`;
  switch (event.type) {
    case 'bootstrap.started':
      return { type: 'Normal', reason: 'BootstrapStarted', message: `started a replica cold to checkpoint it on this node (${hash(event)})` };
    case 'bootstrap.succeeded':
      return {
        type: 'Normal',
        reason: 'BootstrapSucceeded',
        message: `checkpoint made in ${event.durationSeconds.toFixed(1)} s, ${(event.bytes / 2 ** 20).toFixed(1)} MiB (${hash(event)}); restoring the other replicas from it`,
      };
    case 'bootstrap.failed':
      return { type: 'Warning', reason: 'BootstrapFailed', message: `${hash(event)}: ${event.message}` };
    default:
      return undefined;
  }
}
