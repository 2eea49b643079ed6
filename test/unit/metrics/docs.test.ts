import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeRegistry, renderMetricsDoc } from '../../../hack/gen/metrics-doc.js';
import { createMetrics } from '../../../controller/metrics/metrics.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');

describe('docs/metrics.md', () => {
  it('is exactly what the registry renders (regenerate: npm run gen)', () => {
    const registry = createMetrics({ version: 'docs' }).registry;
    expect(read('docs/metrics.md')).toBe(renderMetricsDoc(registry));
  });

  it('documents every metric the registry serves, with its type and labels', () => {
    const doc = read('docs/metrics.md');
    const registered = describeRegistry(createMetrics({ version: 'docs' }).registry);
    expect(registered.length).toBeGreaterThan(19);
    for (const m of registered) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${m.name}\``) || line.startsWith(`| [\`${m.name}\`]`));
      expect(row, m.name).toBeDefined();
      expect(row).toContain(`| ${m.kind} |`);
      for (const label of m.labels) expect(row, `${m.name} label ${label}`).toContain(`\`${label}\``);
    }
  });
});

describe('docs/runbook.md and the alert rules refer only to metrics that exist', () => {
  const names = new Set(describeRegistry(createMetrics({ version: 'docs' }).registry).map((m) => m.name));
  const exists = (series: string) => names.has(series) || names.has(series.replace(/_(bucket|sum|count)$/, ''));
  for (const file of ['docs/runbook.md', 'manifests/monitoring/alerts.rules.yaml']) {
    it(file, () => {
      const used = new Set(read(file).match(/\b(?:crs|workqueue)_[a-z_]+[a-z]\b/g) ?? []);
      expect(used.size).toBeGreaterThan(3);
      const unknown = [...used].filter((series) => !exists(series));
      expect(unknown).toEqual([]);
    });
  }
});
