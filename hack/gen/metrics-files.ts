// The files derived from the metrics catalog and the alert rules, relative to the repository root.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createMetrics } from '../../controller/metrics/metrics.js';
import { renderMetricsDoc } from './metrics-doc.js';
import { PROMETHEUS_RULE_FILE, RULES_FILE, renderPrometheusRule } from './prometheus-rule.js';
import type { GeneratedFile } from './write-or-check.js';

const METRICS_DOC_FILE = 'docs/metrics.md';

export function generatedMetricsFiles(repoRoot: string): GeneratedFile[] {
  const metrics = createMetrics({ version: 'docs' });
  return [
    { path: METRICS_DOC_FILE, content: renderMetricsDoc(metrics.registry) },
    { path: PROMETHEUS_RULE_FILE, content: renderPrometheusRule(readFileSync(path.join(repoRoot, RULES_FILE), 'utf8')) },
  ];
}
