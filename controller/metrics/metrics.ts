// The agent's metrics on its OWN prom-client registry (never the global one, so tests and embedders
// can build several side by side), with typed methods so callers cannot invent names or labels.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FailureReason, HygieneIgnoredReason } from '../engine/types.js';
import type { WorkQueueMetricsSink } from '../kube/workqueue-metrics.js';
import { CATALOG, FAILURE_REASONS, RECONCILE_RESULTS, type MetricDefinition, type ReconcileResult, type RestoreReasonLabel } from './catalog.js';
import { MetricsError } from './errors.js';

/** Which resource a series belongs to; any ResourceRef / ReplicaOwner fits. */
interface NamedResource {
  namespace: string;
  name: string;
  /** The resource's uid when known: after forget(), late reports carrying it are ignored. */
  uid?: string;
}

/** Uids of forgotten resources remembered, so late reports cannot re-create their series. */
const FORGOTTEN_UIDS_KEPT = 4096;

/** This node's replica counts for one resource. */
interface ReplicaCounts {
  desired: number;
  ready: number;
  restoring: number;
  failed: number;
}

type RestoreOutcome = { result: 'success' } | { result: 'failure'; reason: FailureReason };

export interface CreateMetricsOptions {
  /** The agent's version, for crs_build_info. */
  version: string;
  /** Process and Node.js runtime metrics (prom-client's defaults). Default true. */
  defaultMetrics?: boolean;
}

export interface CrsMetrics {
  readonly registry: Registry;
  /** The work queue's sink (workqueue_* metrics, label `name` = the queue's name). */
  readonly workQueue: WorkQueueMetricsSink;
  /** Sets crs_replicas_{desired,ready,restoring,failed} for one resource on one node. */
  replicaCounts(resource: NamedResource, node: string, counts: ReplicaCounts): void;
  /** One finished restore attempt: crs_restores_total and crs_restore_duration_seconds. */
  restoreFinished(resource: NamedResource, outcome: RestoreOutcome, durationSeconds: number): void;
  restoresInFlight(node: string, count: number): void;
  concurrencyLimit(node: string, limit: number): void;
  /** One bootstrap (cold start to checkpoint) ended: crs_bootstrap_duration_seconds. */
  bootstrapFinished(outcome: 'success' | 'failure', seconds: number): void;
  /** A new generation of `resource` became Ready after `seconds`. */
  converged(resource: NamedResource, seconds: number): void;
  reconciled(result: ReconcileResult, seconds: number): void;
  checkpointCopiesReclaimed(node: string, bytes: number): void;
  diskHeadroom(node: string, bytes: number): void;
  hygieneIgnored(node: string, reason: HygieneIgnoredReason): void;
  containerdTmpWorldWritable(node: string, worldWritable: boolean): void;
  /** crs_checkpoint_size_bytes: the size of the checkpoint `resource` restores from on `node`. */
  checkpointSize(resource: NamedResource, node: string, bytes: number): void;
  /** Whether this agent's Node object exists (a missing one makes nodeSelectors unknown). */
  nodeObjectPresent(node: string, present: boolean): void;
  /** Deletes every series labelled with a deleted resource, so they do not linger forever. */
  forget(resource: NamedResource): void;
}

export function createMetrics(options: CreateMetricsOptions): CrsMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const m = createInstruments(registry);
  m.buildInfo.set({ version: label('version', options.version), node_version: process.version }, 1);
  // Counters that alerts divide by exist from the start, so a ratio is 0, not "no data".
  for (const result of RECONCILE_RESULTS) m.reconcileTotal.inc({ result }, 0);
  return { registry, workQueue: workQueueSink(m), ...resourceMethods(m, createSeriesLedger()), ...nodeMethods(m) };
}

/** Every instrument of CATALOG on `registry` (a declarative table). */
function createInstruments(registry: Registry) {
  const gauge = (def: MetricDefinition) => new Gauge({ name: def.name, help: def.help, labelNames: def.labels, registers: [registry] });
  const counter = (def: MetricDefinition) => new Counter({ name: def.name, help: def.help, labelNames: def.labels, registers: [registry] });
  const histogram = (def: MetricDefinition) =>
    new Histogram({
      name: def.name,
      help: def.help,
      labelNames: def.labels,
      buckets: [...(def.buckets ?? [])],
      registers: [registry],
    });
  return {
    replicasDesired: gauge(CATALOG.replicasDesired),
    replicasReady: gauge(CATALOG.replicasReady),
    replicasRestoring: gauge(CATALOG.replicasRestoring),
    replicasFailed: gauge(CATALOG.replicasFailed),
    restoresTotal: counter(CATALOG.restoresTotal),
    restoreDuration: histogram(CATALOG.restoreDuration),
    restoresInFlight: gauge(CATALOG.restoresInFlight),
    restoreConcurrencyLimit: gauge(CATALOG.restoreConcurrencyLimit),
    convergeDuration: histogram(CATALOG.convergeDuration),
    bootstrapDuration: histogram(CATALOG.bootstrapDuration),
    reconcileTotal: counter(CATALOG.reconcileTotal),
    reconcileDuration: histogram(CATALOG.reconcileDuration),
    workqueueDepth: gauge(CATALOG.workqueueDepth),
    workqueueAdds: counter(CATALOG.workqueueAdds),
    workqueueRetries: counter(CATALOG.workqueueRetries),
    workqueueQueueDuration: histogram(CATALOG.workqueueQueueDuration),
    workqueueWorkDuration: histogram(CATALOG.workqueueWorkDuration),
    reclaimedBytes: counter(CATALOG.checkpointCopiesReclaimedBytes),
    diskHeadroom: gauge(CATALOG.diskHeadroom),
    hygieneIgnored: counter(CATALOG.hygieneIgnored),
    containerdTmpWorldWritable: gauge(CATALOG.containerdTmpWorldWritable),
    checkpointSize: gauge(CATALOG.checkpointSize),
    buildInfo: gauge(CATALOG.buildInfo),
    nodeObjectPresent: gauge(CATALOG.nodeObjectPresent),
  };
}

type Instruments = ReturnType<typeof createInstruments>;

interface SeriesEntry {
  resource: NamedResource;
  nodes: Set<string>;
  outcomes: Set<string>;
  uids: Set<string>;
}

/**
 * Which series each resource created, and which resources were forgotten. prom-client deletes a
 * series only given its full label set, so forget() must know exactly those.
 */
function createSeriesLedger() {
  const seriesOf = new Map<string, SeriesEntry>();
  // A restore aborted by the deletion, or the reconciler's last count, can arrive after forget():
  // recording it would re-create series that nothing deletes again (a slow leak per deleted resource).
  // Bounded: insertion order is age order, the oldest go first.
  const forgottenUids = new Set<string>();
  const rememberForgotten = (uid: string): void => {
    forgottenUids.delete(uid);
    forgottenUids.add(uid);
    if (forgottenUids.size > FORGOTTEN_UIDS_KEPT) forgottenUids.delete(forgottenUids.values().next().value as string);
  };
  return {
    track(resource: NamedResource): SeriesEntry {
      const key = `${resource.namespace}/${resource.name}`;
      let entry = seriesOf.get(key);
      if (!entry) {
        entry = { resource: { namespace: resource.namespace, name: resource.name }, nodes: new Set(), outcomes: new Set(), uids: new Set() };
        seriesOf.set(key, entry);
      }
      if (resource.uid) entry.uids.add(resource.uid);
      return entry;
    },
    forgotten: (resource: NamedResource): boolean => resource.uid !== undefined && forgottenUids.has(resource.uid),
    /** Ends tracking of `resource`; returns what it had created so the caller deletes those series. */
    forget(resource: NamedResource): SeriesEntry | undefined {
      const key = `${resource.namespace}/${resource.name}`;
      const entry = seriesOf.get(key);
      if (entry) {
        for (const uid of entry.uids) rememberForgotten(uid);
        seriesOf.delete(key);
      }
      if (resource.uid) rememberForgotten(resource.uid);
      return entry;
    },
  };
}

type SeriesLedger = ReturnType<typeof createSeriesLedger>;

function workQueueSink(m: Instruments): WorkQueueMetricsSink {
  return {
    added(queue) {
      m.workqueueAdds.inc({ name: label('queue', queue) });
    },
    depth(queue, depth) {
      m.workqueueDepth.set({ name: label('queue', queue) }, count('depth', depth));
    },
    retried(queue) {
      m.workqueueRetries.inc({ name: label('queue', queue) });
    },
    queued(queue, seconds) {
      m.workqueueQueueDuration.observe({ name: label('queue', queue) }, nonNegative('seconds', seconds));
    },
    worked(queue, seconds) {
      m.workqueueWorkDuration.observe({ name: label('queue', queue) }, nonNegative('seconds', seconds));
    },
  };
}

/** The methods whose series carry a resource's labels, and so must be deleted by forget(). */
function resourceMethods(m: Instruments, ledger: SeriesLedger) {
  return {
    replicaCounts(resource, node, counts) {
      if (ledger.forgotten(resource)) return;
      const labels = resourceNodeLabels(resource, node);
      const values = {
        desired: count('counts.desired', counts.desired),
        ready: count('counts.ready', counts.ready),
        restoring: count('counts.restoring', counts.restoring),
        failed: count('counts.failed', counts.failed),
      };
      m.replicasDesired.set(labels, values.desired);
      m.replicasReady.set(labels, values.ready);
      m.replicasRestoring.set(labels, values.restoring);
      m.replicasFailed.set(labels, values.failed);
      ledger.track(resource).nodes.add(labels.node);
    },
    restoreFinished(resource, outcome, durationSeconds) {
      const seconds = nonNegative('durationSeconds', durationSeconds);
      const reason = reasonLabel(outcome);
      if (ledger.forgotten(resource)) {
        m.restoreDuration.observe(seconds); // unlabelled by resource: still a restore this host made
        return;
      }
      const labels = {
        namespace: label('resource.namespace', resource.namespace),
        name: label('resource.name', resource.name),
        result: outcome.result,
        reason,
      };
      m.restoresTotal.inc(labels);
      m.restoreDuration.observe(seconds);
      ledger.track(resource).outcomes.add(JSON.stringify([outcome.result, reason]));
    },
    converged(resource, seconds) {
      label('resource.namespace', resource.namespace);
      label('resource.name', resource.name);
      m.convergeDuration.observe(nonNegative('seconds', seconds));
    },
    checkpointSize(resource, node, bytes) {
      const labels = resourceNodeLabels(resource, node);
      m.checkpointSize.set(labels, count('bytes', bytes));
      ledger.track(resource).nodes.add(labels.node);
    },
    forget(resource) {
      const entry = ledger.forget(resource);
      if (!entry) return;
      const { namespace, name } = entry.resource;
      for (const node of entry.nodes) {
        for (const g of [m.replicasDesired, m.replicasReady, m.replicasRestoring, m.replicasFailed, m.checkpointSize]) g.remove({ namespace, name, node });
      }
      for (const outcome of entry.outcomes) {
        const [result, reason] = JSON.parse(outcome) as [string, string];
        m.restoresTotal.remove({ namespace, name, result, reason });
      }
    },
  } satisfies Partial<CrsMetrics>;
}

/** The methods labelled by node or outcome only. */
function nodeMethods(m: Instruments) {
  return {
    restoresInFlight(node, inFlight) {
      m.restoresInFlight.set({ node: label('node', node) }, count('count', inFlight));
    },
    concurrencyLimit(node, limit) {
      m.restoreConcurrencyLimit.set({ node: label('node', node) }, count('limit', limit));
    },
    bootstrapFinished(outcome, seconds) {
      if (outcome !== 'success' && outcome !== 'failure') throw new MetricsError('InvalidLabel', `outcome: "${String(outcome)}" is not success or failure`);
      m.bootstrapDuration.observe({ outcome }, nonNegative('seconds', seconds));
    },
    reconciled(result, seconds) {
      if (!(RECONCILE_RESULTS as readonly string[]).includes(result)) {
        throw new MetricsError('InvalidLabel', `result: "${String(result)}" is not one of ${RECONCILE_RESULTS.join(', ')}`);
      }
      m.reconcileTotal.inc({ result });
      m.reconcileDuration.observe(nonNegative('seconds', seconds));
    },
    checkpointCopiesReclaimed(node, bytes) {
      m.reclaimedBytes.inc({ node: label('node', node) }, nonNegative('bytes', bytes));
    },
    nodeObjectPresent(node, present) {
      m.nodeObjectPresent.set({ node: label('node', node) }, present ? 1 : 0);
    },
    diskHeadroom(node, bytes) {
      m.diskHeadroom.set({ node: label('node', node) }, nonNegative('bytes', bytes));
    },
    hygieneIgnored(node, reason) {
      m.hygieneIgnored.inc({ node: label('node', node), reason });
    },
    containerdTmpWorldWritable(node, worldWritable) {
      m.containerdTmpWorldWritable.set({ node: label('node', node) }, worldWritable ? 1 : 0);
    },
  } satisfies Partial<CrsMetrics>;
}

function resourceNodeLabels(resource: NamedResource, node: string) {
  return {
    namespace: label('resource.namespace', resource.namespace),
    name: label('resource.name', resource.name),
    node: label('node', node),
  };
}

/** The reason label stays in the closed set even if an engine reports something unexpected at run time. */
function reasonLabel(outcome: RestoreOutcome): RestoreReasonLabel {
  if (outcome.result === 'success') return 'none';
  if (outcome.result !== 'failure') {
    throw new MetricsError('InvalidLabel', `outcome.result: "${String((outcome as { result: unknown }).result)}" is not success or failure`);
  }
  return (FAILURE_REASONS as readonly string[]).includes(outcome.reason) ? outcome.reason : 'Unknown';
}

function label(field: string, value: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new MetricsError('InvalidLabel', `${field}: must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function nonNegative(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new MetricsError('InvalidValue', `${field}: must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

function count(field: string, value: number): number {
  if (!Number.isInteger(nonNegative(field, value))) {
    throw new MetricsError('InvalidValue', `${field}: must be a whole number, got ${String(value)}`);
  }
  return value;
}
