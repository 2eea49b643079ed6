// The dashboard only names metrics the agent exports (catalog.ts), and its panels are well formed.
// That every query returns data is proven against a real Prometheus: test/integration/e2e/grafana-dashboard.test.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATALOG } from '../../../controller/metrics/catalog.js';

const file = path.resolve(import.meta.dirname, '../../../manifests/monitoring/grafana-dashboard.json');
const dashboard = JSON.parse(readFileSync(file, 'utf8')) as {
  uid: string;
  panels: Array<{ id: number; title: string; gridPos: { w: number; x: number }; targets: Array<{ expr: string; refId: string }> }>;
};

describe('grafana-dashboard.json', () => {
  it('every metric a query names is one the agent exports', () => {
    const exported = new Set<string>(Object.values(CATALOG).map((d) => d.name));
    const used = new Set(
      dashboard.panels.flatMap((p) =>
        p.targets.flatMap((t) => [...t.expr.matchAll(/\b((?:crs|workqueue)_[a-z_]+?)(?:_bucket|_count|_sum)?\{/g)].map((m) => m[1]!)),
      ),
    );
    expect(used.size).toBeGreaterThanOrEqual(12);
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
    // The list: replicas, restores, durations, failures, in flight vs cap, converge, disk, reclaimed, work queue.
    for (const def of [
      CATALOG.replicasDesired,
      CATALOG.replicasReady,
      CATALOG.replicasRestoring,
      CATALOG.replicasFailed,
      CATALOG.restoresTotal,
      CATALOG.restoreDuration,
      CATALOG.restoresInFlight,
      CATALOG.restoreConcurrencyLimit,
      CATALOG.convergeDuration,
      CATALOG.diskHeadroom,
      CATALOG.checkpointCopiesReclaimedBytes,
      CATALOG.workqueueDepth,
      CATALOG.checkpointSize,
    ]) {
      expect(used, def.name).toContain(def.name);
    }
  });

  it('panels have unique ids, fit the 24-column grid and unique refIds per panel', () => {
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(new Set(p.targets.map((t) => t.refId)).size, p.title).toBe(p.targets.length);
    }
    expect(dashboard.uid).toBe('crs-controller');
  });
});
