import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MetricsError } from '../../../controller/metrics/errors.js';
import { describeRegistry } from '../../../hack/gen/metrics-doc.js';
import { createMetrics } from '../../../controller/metrics/metrics.js';
import type { FailureReason } from '../../../controller/engine/types.js';
import type { ReconcileMetricsPort, ReplicaCounts as ReconcileReplicaCounts } from '../../../controller/reconcile/ports.js';
import { samples, valueOf } from './helpers.js';

const web = { namespace: 'shop', name: 'web' };
const api = { namespace: 'shop', name: 'api' };

// Issue 6 fixes these names, types and labels for dashboards and alerts. Written out here, not read
// from the catalog, so a change to the catalog that breaks the contract fails this test.
const CONTRACT: [string, string, string[]][] = [
  ['crs_replicas_desired', 'gauge', ['namespace', 'name', 'node']],
  ['crs_replicas_ready', 'gauge', ['namespace', 'name', 'node']],
  ['crs_replicas_restoring', 'gauge', ['namespace', 'name', 'node']],
  ['crs_replicas_failed', 'gauge', ['namespace', 'name', 'node']],
  ['crs_restores_total', 'counter', ['namespace', 'name', 'result', 'reason']],
  ['crs_restore_duration_seconds', 'histogram', []],
  ['crs_restores_in_flight', 'gauge', ['node']],
  ['crs_restore_concurrency_limit', 'gauge', ['node']],
  ['crs_converge_duration_seconds', 'histogram', []],
  ['crs_bootstrap_duration_seconds', 'histogram', ['outcome']],
  ['crs_reconcile_total', 'counter', ['result']],
  ['crs_reconcile_duration_seconds', 'histogram', []],
  ['workqueue_depth', 'gauge', ['name']],
  ['workqueue_adds_total', 'counter', ['name']],
  ['workqueue_retries_total', 'counter', ['name']],
  ['workqueue_queue_duration_seconds', 'histogram', ['name']],
  ['workqueue_work_duration_seconds', 'histogram', ['name']],
  ['crs_checkpoint_copies_reclaimed_bytes_total', 'counter', ['node']],
  ['crs_disk_headroom_bytes', 'gauge', ['node']],
  // Issue 9: host hygiene's refusals and the warning about a world-writable --containerd-tmp.
  ['crs_hygiene_ignored_total', 'counter', ['node', 'reason']],
  ['crs_containerd_tmp_world_writable', 'gauge', ['node']],
  ['crs_checkpoint_size_bytes', 'gauge', ['namespace', 'name', 'node']],
  ['crs_build_info', 'gauge', ['version', 'node_version']],
  ['crs_node_object_present', 'gauge', ['node']],
];

describe('createMetrics: names, types, labels', () => {
  it('registers exactly the metrics of issues 6 and 9 with their types and labels', () => {
    const { registry } = createMetrics({ version: '1.2.3', defaultMetrics: false });
    const registered = describeRegistry(registry).map((m) => [m.name, m.kind, [...m.labels]]);
    expect(registered).toEqual(CONTRACT);
  });

  it('uses its own registry, never the global one, so two instances do not collide', () => {
    const a = createMetrics({ version: 'a' });
    const b = createMetrics({ version: 'b' });
    expect(a.registry).not.toBe(b.registry);
    expect(globalRegistry.getSingleMetric('crs_replicas_ready')).toBeUndefined();
    expect(globalRegistry.getSingleMetric('process_cpu_user_seconds_total')).toBeUndefined();
  });

  it('includes process and Node.js runtime metrics unless turned off', () => {
    const withDefaults = createMetrics({ version: 'x' }).registry;
    expect(withDefaults.getSingleMetric('process_cpu_user_seconds_total')).toBeDefined();
    expect(withDefaults.getSingleMetric('process_resident_memory_bytes')).toBeDefined();
    expect(withDefaults.getSingleMetric('nodejs_eventloop_lag_seconds')).toBeDefined();
    const without = createMetrics({ version: 'x', defaultMetrics: false }).registry;
    expect(without.getSingleMetric('process_cpu_user_seconds_total')).toBeUndefined();
  });

  it('restore duration buckets span 0.1 s to 10 min', async () => {
    const m = createMetrics({ version: 'x', defaultMetrics: false });
    m.restoreFinished(web, { result: 'success' }, 1);
    const les = (await samples(m.registry, 'crs_restore_duration_seconds'))
      .filter((s) => s.labels.__name__ === 'crs_restore_duration_seconds_bucket')
      .map((s) => s.labels.le);
    expect(les[0]).toBe(0.1);
    expect(les).toContain(600);
    expect(les.at(-1)).toBe('+Inf');
  });

  it('crs_build_info is 1 with the version and the Node.js version', async () => {
    const m = createMetrics({ version: '0.4.0', defaultMetrics: false });
    expect(await valueOf(m.registry, 'crs_build_info', { version: '0.4.0', node_version: process.version })).toBe(1);
  });

  it('exposes crs_reconcile_total for every result from the start, so ratios are 0 rather than empty', async () => {
    const m = createMetrics({ version: 'x', defaultMetrics: false });
    for (const result of ['converged', 'waiting', 'backingOff', 'degraded', 'paused', 'deleted', 'stopped', 'error']) {
      expect(await valueOf(m.registry, 'crs_reconcile_total', { result })).toBe(0);
    }
  });
});

describe('createMetrics: typed methods', () => {
  it('replicaCounts sets the four gauges of one resource on one node', async () => {
    const m = createMetrics({ version: 'x', defaultMetrics: false });
    m.replicaCounts(web, 'n1', { desired: 45, ready: 12, restoring: 10, failed: 1 });
    m.replicaCounts(web, 'n1', { desired: 45, ready: 20, restoring: 10, failed: 0 });
    const labels = { ...web, node: 'n1' };
    expect(await valueOf(m.registry, 'crs_replicas_desired', labels)).toBe(45);
    expect(await valueOf(m.registry, 'crs_replicas_ready', labels)).toBe(20);
    expect(await valueOf(m.registry, 'crs_replicas_restoring', labels)).toBe(10);
    expect(await valueOf(m.registry, 'crs_replicas_failed', labels)).toBe(0);
  });

  it('restoreFinished counts by result and reason and observes the duration', async () => {
    const m = createMetrics({ version: 'x', defaultMetrics: false });
    m.restoreFinished(web, { result: 'success' }, 0.8);
    m.restoreFinished(web, { result: 'success' }, 1.2);
    m.restoreFinished(web, { result: 'failure', reason: 'RestoreRace' }, 30);
    expect(await valueOf(m.registry, 'crs_restores_total', { ...web, result: 'success', reason: 'none' })).toBe(2);
    expect(await valueOf(m.registry, 'crs_restores_total', { ...web, result: 'failure', reason: 'RestoreRace' })).toBe(1);
    expect(await valueOf(m.registry, 'crs_restore_duration_seconds', { __name__: 'crs_restore_duration_seconds_count' })).toBe(3);
    expect(await valueOf(m.registry, 'crs_restore_duration_seconds', { __name__: 'crs_restore_duration_seconds_sum' })).toBe(32);
    expect(await valueOf(m.registry, 'crs_restore_duration_seconds', { __name__: 'crs_restore_duration_seconds_bucket', le: 1 })).toBe(1);
  });

  it('keeps the reason label in the closed set when an unknown reason arrives at run time', async () => {
    const m = createMetrics({ version: 'x', defaultMetrics: false });
    // A value outside the type, as a misbehaving caller written in plain JS could pass.
    m.restoreFinished(web, { result: 'failure', reason: 'container 3f2a9c exploded' as FailureReason }, 1);
    expect(await valueOf(m.registry, 'crs_restores_total', { ...web, result: 'failure', reason: 'Unknown' })).toBe(1);
    const reasons = (await samples(m.registry, 'crs_restores_total')).map((s) => s.labels.reason);
    expect(reasons).toEqual(['Unknown']);
  });

  it('records in-flight, limit, reconciles, convergence, hygiene and headroom', async () => {
    const m = createMetrics({ version: 'x', defaultMetrics: false });
    m.restoresInFlight('n1', 7);
    m.concurrencyLimit('n1', 10);
    m.reconciled('converged', 0.02);
    m.reconciled('error', 0.5);
    m.reconciled('error', 0.5);
    m.converged(web, 65);
    m.checkpointCopiesReclaimed('n1', 1000);
    m.checkpointCopiesReclaimed('n1', 500);
    m.diskHeadroom('n1', 5e10);
    expect(await valueOf(m.registry, 'crs_restores_in_flight', { node: 'n1' })).toBe(7);
    expect(await valueOf(m.registry, 'crs_restore_concurrency_limit', { node: 'n1' })).toBe(10);
    expect(await valueOf(m.registry, 'crs_reconcile_total', { result: 'error' })).toBe(2);
    expect(await valueOf(m.registry, 'crs_reconcile_total', { result: 'converged' })).toBe(1);
    expect(await valueOf(m.registry, 'crs_reconcile_duration_seconds', { __name__: 'crs_reconcile_duration_seconds_count' })).toBe(3);
    expect(await valueOf(m.registry, 'crs_converge_duration_seconds', { __name__: 'crs_converge_duration_seconds_sum' })).toBe(65);
    expect(await valueOf(m.registry, 'crs_checkpoint_copies_reclaimed_bytes_total', { node: 'n1' })).toBe(1500);
    expect(await valueOf(m.registry, 'crs_disk_headroom_bytes', { node: 'n1' })).toBe(5e10);
  });

  it('implements the work queue sink with the client-go names', async () => {
    const m = createMetrics({ version: 'x', defaultMetrics: false });
    const q = m.workQueue;
    q.added('crs');
    q.added('crs');
    q.depth('crs', 2);
    q.retried('crs');
    q.queued('crs', 0.001);
    q.worked('crs', 3);
    q.depth('crs', 0);
    expect(await valueOf(m.registry, 'workqueue_adds_total', { name: 'crs' })).toBe(2);
    expect(await valueOf(m.registry, 'workqueue_depth', { name: 'crs' })).toBe(0);
    expect(await valueOf(m.registry, 'workqueue_retries_total', { name: 'crs' })).toBe(1);
    expect(await valueOf(m.registry, 'workqueue_queue_duration_seconds', { __name__: 'workqueue_queue_duration_seconds_count', name: 'crs' })).toBe(1);
    expect(await valueOf(m.registry, 'workqueue_work_duration_seconds', { __name__: 'workqueue_work_duration_seconds_sum', name: 'crs' })).toBe(3);
  });

  it('forget deletes every series of a deleted resource and keeps the others', async () => {
    const m = createMetrics({ version: 'x', defaultMetrics: false });
    m.replicaCounts(web, 'n1', { desired: 3, ready: 3, restoring: 0, failed: 0 });
    m.replicaCounts(api, 'n1', { desired: 2, ready: 1, restoring: 1, failed: 0 });
    m.restoreFinished(web, { result: 'success' }, 1);
    m.restoreFinished(web, { result: 'failure', reason: 'DiskFull' }, 1);
    m.restoreFinished(api, { result: 'success' }, 1);
    m.checkpointSize(web, 'n2', 1024);
    m.checkpointSize(api, 'n1', 2048);

    m.forget(web);

    for (const name of [
      'crs_replicas_desired',
      'crs_replicas_ready',
      'crs_replicas_restoring',
      'crs_replicas_failed',
      'crs_restores_total',
      'crs_checkpoint_size_bytes',
    ]) {
      const left = await samples(m.registry, name);
      expect(left.length, name).toBeGreaterThan(0);
      expect(
        left.every((s) => s.labels.name === 'api'),
        name,
      ).toBe(true);
    }
    expect(await valueOf(m.registry, 'crs_replicas_ready', { ...api, node: 'n1' })).toBe(1);
    // A resource recreated with the same name starts from zero.
    m.restoreFinished(web, { result: 'success' }, 1);
    expect(await valueOf(m.registry, 'crs_restores_total', { ...web, result: 'success', reason: 'none' })).toBe(1);
    // Forgetting an unknown resource is harmless.
    expect(() => m.forget({ namespace: 'nowhere', name: 'none' })).not.toThrow();
  });

  it('late reports of a forgotten resource (same uid) do not re-create its series; a re-created one (new uid) counts', async () => {
    const m = createMetrics({ version: 'x', defaultMetrics: false });
    const old = { ...web, uid: 'uid-old' };
    m.replicaCounts(old, 'n1', { desired: 3, ready: 3, restoring: 0, failed: 0 });
    m.restoreFinished(old, { result: 'success' }, 1);
    m.forget(web); // the agent knows only the name of a deleted resource
    // A restore aborted by the deletion and the reconciler's last count arrive afterwards.
    m.restoreFinished(old, { result: 'failure', reason: 'Aborted' }, 2);
    m.replicaCounts(old, 'n1', { desired: 0, ready: 0, restoring: 0, failed: 0 });
    for (const name of ['crs_replicas_desired', 'crs_replicas_ready', 'crs_restores_total']) {
      expect(
        (await samples(m.registry, name)).filter((s) => s.labels.name === 'web'),
        name,
      ).toEqual([]);
    }
    // The duration histogram (not per resource) still saw the restore.
    expect(await valueOf(m.registry, 'crs_restore_duration_seconds', { __name__: 'crs_restore_duration_seconds_count' })).toBe(2);
    const again = { ...web, uid: 'uid-new' };
    m.restoreFinished(again, { result: 'success' }, 1);
    expect(await valueOf(m.registry, 'crs_restores_total', { ...web, result: 'success', reason: 'none' })).toBe(1);
  });
});

describe("createMetrics as the reconciler's metrics port", () => {
  it("implements ReconcileMetricsPort whole, with the reconciler's own counts and outcomes", async () => {
    const m = createMetrics({ version: 'x', defaultMetrics: false });
    const port: ReconcileMetricsPort = m; // compile-time: the reconciler can take createMetrics() as is
    const ref = { namespace: 'shop', name: 'web', uid: 'u-1', generation: 3 };
    const counts: ReconcileReplicaCounts = { desired: 45, replicas: 45, ready: 44, restoring: 1, failed: 0, coldStarted: 2 };
    port.replicaCounts(ref, 'n1', counts);
    port.reconciled('backingOff', 0.1);
    port.reconciled('degraded', 0.1);
    port.converged(ref, 64);
    expect(await valueOf(m.registry, 'crs_replicas_ready', { namespace: 'shop', name: 'web', node: 'n1' })).toBe(44);
    expect(await valueOf(m.registry, 'crs_reconcile_total', { result: 'backingOff' })).toBe(1);
    expect(await valueOf(m.registry, 'crs_reconcile_total', { result: 'degraded' })).toBe(1);
    expect(await valueOf(m.registry, 'crs_converge_duration_seconds', { __name__: 'crs_converge_duration_seconds_count' })).toBe(1);
  });
});

describe('createMetrics: bad input', () => {
  const m = createMetrics({ version: 'x', defaultMetrics: false });
  const cases: [string, () => void, MetricsError['code'], RegExp][] = [
    [
      'negative count',
      () => m.replicaCounts(web, 'n1', { desired: -1, ready: 0, restoring: 0, failed: 0 }),
      'InvalidValue',
      /counts\.desired: must be a finite number >= 0, got -1/,
    ],
    [
      'fractional count',
      () => m.replicaCounts(web, 'n1', { desired: 1, ready: 0.5, restoring: 0, failed: 0 }),
      'InvalidValue',
      /counts\.ready: must be a whole number, got 0\.5/,
    ],
    ['NaN duration', () => m.restoreFinished(web, { result: 'success' }, Number.NaN), 'InvalidValue', /durationSeconds: .* got NaN/],
    ['infinite headroom', () => m.diskHeadroom('n1', Number.POSITIVE_INFINITY), 'InvalidValue', /bytes: .* got Infinity/],
    ['negative queue wait', () => m.workQueue.queued('crs', -0.1), 'InvalidValue', /seconds: .* got -0\.1/],
    ['empty node', () => m.restoresInFlight('', 1), 'InvalidLabel', /node: must be a non-empty string/],
    [
      'empty namespace',
      () => m.replicaCounts({ namespace: '', name: 'web' }, 'n1', { desired: 1, ready: 0, restoring: 0, failed: 0 }),
      'InvalidLabel',
      /resource\.namespace: must be a non-empty string/,
    ],
    [
      'unknown reconcile result',
      () => m.reconciled('maybe' as 'error', 1),
      'InvalidLabel',
      /result: "maybe" is not one of converged, waiting, backingOff, degraded, paused, deleted, stopped, error/,
    ],
    ['empty version', () => createMetrics({ version: '', defaultMetrics: false }), 'InvalidLabel', /version: must be a non-empty string/],
  ];
  it.each(cases)('%s: a typed error naming the field', (_name, act, code, message) => {
    let caught: unknown;
    try {
      act();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(MetricsError);
    expect((caught as MetricsError).code).toBe(code);
    expect((caught as MetricsError).message).toMatch(message);
  });

  it('a rejected value leaves the previous one in place', async () => {
    const ok = createMetrics({ version: 'x', defaultMetrics: false });
    ok.replicaCounts(web, 'n1', { desired: 5, ready: 5, restoring: 0, failed: 0 });
    expect(() => ok.replicaCounts(web, 'n1', { desired: 5, ready: -1, restoring: 0, failed: 0 })).toThrow(MetricsError);
    expect(await valueOf(ok.registry, 'crs_replicas_ready', { ...web, node: 'n1' })).toBe(5);
  });
});
