// Every query of manifests/monitoring/grafana-dashboard.json, run against a real Prometheus that
// scrapes the real agent during a rollout on the test bed, returns data: a dashboard whose panels
// name a metric or label that does not exist would show "No data" and fail here.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningAgent, startAgent } from '../support/agent.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { startPrometheus, type RunningPrometheus } from '../support/prometheus.js';
import { type E2eRun, cleanUpRun, sampleManifest } from '../support/e2e.js';
import { checkpointedSource } from '../support/workload.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);
const namespace = `dash-${Date.now().toString(36)}`;
const node = `dash-node-${Date.now().toString(36)}`;
const sourceName = `${namespace}-source`;
let agent: RunningAgent | undefined;
let prometheus: RunningPrometheus | undefined;

interface Dashboard {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  templating: { list: Array<{ name: string; type: string; definition?: string }> };
}
const dashboard = JSON.parse(readFileSync(path.join(bed.repoRoot, 'manifests/monitoring/grafana-dashboard.json'), 'utf8')) as Dashboard;

/** Grafana's variables as a user would pick them: this test's namespace and node, every resource. */
function substitute(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$namespace', namespace).replaceAll('$name', '.*').replaceAll('$node', node);
}

const run: E2eRun = { namespace, node, sourceName };
// Small batches: the rollout lasts long enough to be seen in flight.
const manifest = (name: string, replicas: number, image = bed.sampleImage) => sampleManifest(bed, run, name, replicas, { image, maxConcurrent: 3 });

beforeAll(async () => {
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } }));
  await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: namespace });
  agent = await startAgent(bed, { nodeName: node, namespace, logLevel: 'info', maxConcurrentRestores: 4 });
  await agent.ready();
  prometheus = await startPrometheus({ jobs: [{ job: 'crs-agent', targets: [new URL(agent.metricsUrl).host] }] });
}, 120_000);

afterAll(async () => {
  await k('-n', namespace, 'delete', 'crs', '--all', '--timeout=60s').catch(() => undefined);
  await prometheus?.stop();
  await cleanUpRun(bed, k, run, agent);
});

describe('the Grafana dashboard', () => {
  it('has the panels the operators need, each with at least one query', () => {
    expect(dashboard.panels.map((p) => p.title)).toEqual([
      'Replicas per resource',
      'Restore rate by result',
      'Restore duration',
      'Restore failures by reason',
      'Restores in flight vs cap',
      'Converge time',
      'Disk headroom',
      'Checkpoint size',
      'Reclaimed checkpoint copies',
      'Work queue',
    ]);
    expect(dashboard.panels.every((p) => p.targets.length > 0)).toBe(true);
  });

  it('every query returns data from the real Prometheus during a rollout', async () => {
    const queries = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: substitute(t.expr) })));
    // The variables' own queries: label_values(selector, label) lists that label of the selector's series.
    const variables = dashboard.templating.list
      .filter((v) => v.type === 'query')
      .map((v) => {
        const m = /^label_values\((.*), (\w+)\)$/.exec(v.definition ?? '');
        expect(m, `variable ${v.name}: ${v.definition}`).not.toBeNull();
        return { variable: v.name, expr: substitute(m![1]!), label: m![2]! };
      });

    // Scraped at least once before the rollout: a rate needs the counters' values from before it.
    await prometheus!.waitFor('crs_converge_duration_seconds_count{job="crs-agent"}', (r) => r.length === 1 && r[0]!.value === 0);
    const started = Date.now();
    await k.apply(manifest('app', 15));
    // A replica whose image is missing: one real failed restore (ImageNotFound) for the failures panel.
    await k.apply(manifest('bad-image', 1, 'crs-no-such-image:1'));
    const answered = new Map<string, number>();
    const pending = () => queries.filter((q) => !answered.has(q.expr));
    let readyAt: number | undefined;
    while (pending().length > 0 && Date.now() - started < 180_000) {
      for (const q of pending()) {
        const samples = await prometheus!.query(q.expr);
        // NaN is what a quantile of no observations gives: no data.
        if (samples.length > 0 && samples.every((s) => Number.isFinite(s.value))) answered.set(q.expr, (Date.now() - started) / 1000);
      }
      if (readyAt === undefined) {
        const app = await k.json<{ status?: { readyReplicas?: number } }>('-n', namespace, 'get', 'crs', 'app');
        if (app.status?.readyReplicas === 15) readyAt = (Date.now() - started) / 1000;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(
      pending()
        .map((q) => `${q.panel}: ${q.expr}`)
        .join('\n'),
    ).toBe('');
    // Most panels had data while replicas were still being restored, not only after.
    const during = queries.filter((q) => readyAt === undefined || answered.get(q.expr)! <= readyAt);
    expect(during.length).toBeGreaterThanOrEqual(queries.length / 2);
    for (const v of variables) {
      const samples = await prometheus!.query(v.expr);
      expect(
        samples.map((s) => s.metric[v.label]),
        v.variable,
      ).toContain(v.variable === 'name' ? 'app' : v.variable === 'node' ? node : namespace);
    }
  }, 240_000);
});
