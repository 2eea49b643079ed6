// A real Prometheus scrapes a real metrics server of this module, evaluates the project's alert
// rules on what it scraped, and PromQL returns the values the agent set.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type CrsMetrics } from '../../../controller/metrics/metrics.js';
import { startMetricsServer, type MetricsServer } from '../../../controller/metrics/server.js';
import { startPrometheus, type RunningPrometheus } from '../support/prometheus.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const web = { namespace: 'shop', name: 'web' };

let metrics: CrsMetrics;
let server: MetricsServer;
let prometheus: RunningPrometheus;

beforeAll(async () => {
  metrics = createMetrics({ version: '0.1.0-test' });
  server = await startMetricsServer({ registry: metrics.registry, address: '127.0.0.1:0', ready: () => true });
  prometheus = await startPrometheus({
    jobs: [{ job: 'crs-agent', targets: [`127.0.0.1:${server.address.port}`] }],
    ruleFiles: [path.join(repoRoot, 'manifests/monitoring/alerts.rules.yaml')],
  });
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  await server?.close();
});

const one = (samples: { value: number }[]) => (samples.length === 1 ? samples[0]!.value : undefined);

describe('Prometheus scraping the metrics server', () => {
  it('scrapes the agent as job crs-agent', async () => {
    const up = await prometheus.waitFor('up{job="crs-agent"}', (r) => one(r) === 1);
    expect(up[0]!.metric.instance).toBe(`127.0.0.1:${server.address.port}`);
  });

  it('PromQL returns the replica counts the agent set, and follows their changes', async () => {
    metrics.replicaCounts(web, 'n1', { desired: 45, ready: 12, restoring: 10, failed: 0 });
    const first = await prometheus.waitFor('crs_replicas_ready{job="crs-agent", namespace="shop", name="web", node="n1"}', (r) => one(r) === 12);
    expect(first).toHaveLength(1);
    metrics.replicaCounts(web, 'n1', { desired: 45, ready: 45, restoring: 0, failed: 0 });
    await prometheus.waitFor('crs_replicas_ready{namespace="shop", name="web"}', (r) => one(r) === 45);
    expect(one(await prometheus.query('crs_replicas_desired{namespace="shop", name="web"} - crs_replicas_ready{namespace="shop", name="web"}'))).toBe(0);
  });

  it('restores, durations, in-flight, work queue, build info and runtime metrics arrive with their labels', async () => {
    metrics.restoreFinished(web, { result: 'success' }, 0.7);
    metrics.restoreFinished(web, { result: 'success' }, 1.4);
    metrics.restoreFinished(web, { result: 'failure', reason: 'RestoreRace' }, 2.1);
    metrics.restoresInFlight('n1', 3);
    metrics.concurrencyLimit('n1', 10);
    metrics.workQueue.added('checkpointreplicasets');
    metrics.workQueue.depth('checkpointreplicasets', 4);

    const byResult = await prometheus.waitFor('sum by (result, reason) (crs_restores_total{namespace="shop", name="web"})', (r) => r.length === 2);
    const value = (result: string) => byResult.find((s) => s.metric.result === result);
    expect(value('success')).toMatchObject({ metric: { reason: 'none' }, value: 2 });
    expect(value('failure')).toMatchObject({ metric: { reason: 'RestoreRace' }, value: 1 });
    expect(one(await prometheus.query('crs_restore_duration_seconds_count'))).toBe(3);
    expect(one(await prometheus.query('crs_restore_duration_seconds_bucket{le="1"}'))).toBe(1);
    expect(one(await prometheus.query('crs_restores_in_flight{node="n1"}'))).toBe(3);
    expect(one(await prometheus.query('workqueue_depth{name="checkpointreplicasets"}'))).toBe(4);
    const build = await prometheus.query('crs_build_info');
    expect(build[0]?.metric).toMatchObject({ version: '0.1.0-test', node_version: process.version });
    expect((await prometheus.query('process_resident_memory_bytes{job="crs-agent"}'))[0]?.value).toBeGreaterThan(0);
  });

  it('evaluates the alert rules on the scraped series: low disk headroom goes pending', async () => {
    metrics.concurrencyLimit('n1', 10);
    metrics.checkpointSize(web, 'n1', 1024 ** 3);
    metrics.diskHeadroom('n1', 1024 ** 3); // 1 GiB, far below 10 x 3 x the 1 GiB checkpoint
    const pending = await prometheus.waitFor('ALERTS{alertname="CrsDiskHeadroomLow"}', (r) => r.length === 1);
    expect(pending[0]!.metric).toMatchObject({ alertstate: 'pending', node: 'n1', severity: 'warning', job: 'crs-agent' });
    // The agent is scraped, so the absence alert is not even pending.
    expect(await prometheus.query('ALERTS{alertname=~"CrsAgentAbsent|CrsAgentDown"}')).toEqual([]);
  });

  it('forget() removes a deleted resource from what Prometheus sees (a stale series ends)', async () => {
    metrics.forget(web);
    await prometheus.waitFor('crs_replicas_ready{namespace="shop", name="web"}', (r) => r.length === 0);
    expect(await prometheus.query('crs_restores_total{namespace="shop", name="web"}')).toEqual([]);
  });
});
