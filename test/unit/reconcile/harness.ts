// A reconciler wired to fakes and xstate's SimulatedClock: no real sleeps, no Docker, no apiserver.

import { SimulatedClock } from 'xstate';
import type { CheckpointReplicaSet, ConditionType, NodeStatus } from '../../../controller/api/types.js';
import { createReconciler, type ReconcileResult, type Reconciler, type ReconcilerOptions } from '../../../controller/reconcile/runner.js';
import type { EventReason, EventType, LogFields, ReconcileOutcome, ResourceRef } from '../../../controller/reconcile/ports.js';
import { FakeEngine } from './fake-engine.js';

const START = Date.parse('2030-01-01T00:00:00Z');

interface RecordedEvent {
  ref: ResourceRef;
  type: EventType;
  reason: EventReason;
  message: string;
  at: number;
}

export interface Harness {
  clock: SimulatedClock;
  engine: FakeEngine;
  reconciler: Reconciler;
  reports: Array<{ ref: ResourceRef; status: NodeStatus; at: number }>;
  events: RecordedEvent[];
  finalizer: { ensured: ResourceRef[]; released: Array<{ ref: ResourceRef; containersLeft: number }> };
  logs: Array<{ level: string; msg: string; fields?: LogFields }>;
  metrics: { reconciled: ReconcileOutcome[]; converged: Array<{ ref: ResourceRef; seconds: number }> };
  /** Lets promises and xstate settle without moving the clock. */
  flush(): Promise<void>;
  /** Moves simulated time forward in steps, settling after each. */
  advance(ms: number, stepMs?: number): Promise<void>;
  /** Runs simulated time until `promise` settles (at most `maxMs`). */
  until<T>(promise: Promise<T>, maxMs?: number, stepMs?: number): Promise<T>;
  reconcile(resource: CheckpointReplicaSet | undefined, maxMs?: number): Promise<ReconcileResult>;
  /** Runs simulated time until the key's actor is in `state` (at most `maxMs`). */
  waitForState(state: string, key?: string, maxMs?: number): Promise<void>;
  lastStatus(): NodeStatus | undefined;
  /** Replicas die on the engine and its event stream says so (as the agent wires it). */
  die(containerIds: string[]): void;
  /** The engine's event stream breaks (`lost`) or stands again (`resumed`). */
  stream(type: 'lost' | 'resumed'): void;
  eventsOf(reason: EventReason): RecordedEvent[];
}

export function createHarness(options: Partial<ReconcilerOptions> = {}): Harness {
  const clock = new SimulatedClock();
  clock.set(START);
  const engine = new FakeEngine(() => clock.now());
  const reports: Harness['reports'] = [];
  const events: RecordedEvent[] = [];
  const finalizer: Harness['finalizer'] = { ensured: [], released: [] };
  const logs: Harness['logs'] = [];
  const metrics: Harness['metrics'] = { reconciled: [], converged: [] };
  const log = (level: string) => (msg: string, fields?: LogFields) => {
    logs.push({ level, msg, ...(fields ? { fields } : {}) });
  };
  const reconciler = createReconciler(
    {
      engine,
      status: {
        report: async (ref, status) => {
          reports.push({ ref, status, at: clock.now() });
        },
      },
      events: { record: (ref, type, reason, message) => events.push({ ref, type, reason, message, at: clock.now() }) },
      finalizer: {
        ensure: async (ref) => {
          finalizer.ensured.push(ref);
        },
        release: async (ref) => {
          finalizer.released.push({ ref, containersLeft: engine.ownedBy(ref.uid).length });
        },
      },
      logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
      metrics: {
        reconciled: (outcome) => metrics.reconciled.push(outcome),
        converged: (ref, seconds) => metrics.converged.push({ ref, seconds }),
        replicaCounts: () => {},
      },
    },
    { node: 'node-a', clock, ...options },
  );

  const flush = async (): Promise<void> => {
    for (let i = 0; i < 30; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const advance = async (ms: number, stepMs = 1000): Promise<void> => {
    for (let passed = 0; passed < ms; passed += stepMs) {
      clock.increment(Math.min(stepMs, ms - passed));
      await flush();
    }
  };
  const until = async <T>(promise: Promise<T>, maxMs = 3_600_000, stepMs = 1000): Promise<T> => {
    let settled = false;
    const watched = promise.finally(() => {
      settled = true;
    });
    await flush();
    for (let passed = 0; !settled && passed < maxMs; passed += stepMs) {
      clock.increment(stepMs);
      await flush();
    }
    if (!settled) throw new Error(`did not settle within ${maxMs} ms of simulated time`);
    return watched;
  };

  return {
    clock,
    engine,
    reconciler,
    reports,
    events,
    finalizer,
    logs,
    metrics,
    flush,
    advance,
    until,
    reconcile: (resource, maxMs) =>
      until(reconciler.reconcile(resource, resource ? `${resource.metadata.namespace}/${resource.metadata.name}` : 'default/web'), maxMs),
    waitForState: async (state, key = 'default/web', maxMs = 3_600_000) => {
      for (let passed = 0; passed <= maxMs; passed += 1000) {
        await flush();
        const snapshot = reconciler.snapshot(key);
        if (snapshot && JSON.stringify(snapshot.value) === JSON.stringify(state)) return;
        clock.increment(1000);
      }
      throw new Error(`${key} did not reach ${state} within ${maxMs} ms; it is ${JSON.stringify(reconciler.snapshot(key)?.value)}`);
    },
    lastStatus: () => reports.at(-1)?.status,
    die: (containerIds) => {
      for (const id of containerIds) {
        const r = engine.kill(id);
        const change = { action: 'die' as const, containerId: id, ownerUid: r.ownerUid, replicaId: r.replicaId, at: new Date(clock.now()) };
        reconciler.engineChanged({ type: 'replica', change });
      }
    },
    stream: (type) => {
      const at = new Date(clock.now());
      reconciler.engineChanged(type === 'lost' ? { type, at, reason: 'the engine closed the event stream' } : { type, at, lostAt: at });
    },
    eventsOf: (reason) => events.filter((e) => e.reason === reason),
  };
}

export interface ResourceOptions {
  name?: string;
  uid?: string;
  generation?: number;
  replicas?: number;
  image?: string;
  maxConcurrent?: number;
  maxAttempts?: number;
  fallback?: 'None' | 'ColdStart';
  paused?: boolean;
  deleting?: boolean;
}

export function resource(o: ResourceOptions = {}): CheckpointReplicaSet {
  return {
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: {
      name: o.name ?? 'web',
      namespace: 'default',
      uid: o.uid ?? 'uid-web',
      generation: o.generation ?? 1,
      ...(o.deleting ? { deletionTimestamp: '2030-01-01T01:00:00Z' } : {}),
    },
    spec: {
      replicas: o.replicas ?? 3,
      checkpoint: { container: 'app-template', name: 'warm' },
      template: { image: o.image ?? 'crs-sample-app:latest' },
      restore: {
        maxConcurrent: o.maxConcurrent ?? 10,
        timeoutSeconds: 120,
        maxAttempts: o.maxAttempts ?? 3,
        fallback: o.fallback ?? 'None',
      },
      ...(o.paused ? { paused: true } : {}),
    },
  };
}

/** Creates started at once, in order, from the 'window opened' and 'restores started' log lines. */
export function startSizes(h: Pick<Harness, 'logs'>): number[] {
  return h.logs.filter((l) => l.msg === 'window opened' || l.msg === 'restores started').map((l) => (l.fields?.['creates'] as unknown[]).length);
}

export function condition(status: NodeStatus | undefined, type: ConditionType) {
  return status?.conditions?.find((c) => c.type === type);
}
