// Regenerates the files derived from the metrics catalog and the alert rules:
//   docs/metrics.md                          from the registry createMetrics() builds
//   manifests/monitoring/prometheusrule.yaml from manifests/monitoring/alerts.rules.yaml
// Usage: npx tsx controller/metrics/generate.ts [--check]   (--check: exit 1 if a file is stale)

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderMetricsDoc } from './metrics-doc.js';
import { createMetrics } from './metrics.js';
import { PROMETHEUS_RULE_FILE, RULES_FILE, renderPrometheusRule } from './prometheus-rule.js';

export const METRICS_DOC_FILE = 'docs/metrics.md';

/** The derived files and their expected content, relative to the repository root. */
export function derivedFiles(repoRoot: string): { file: string; content: string }[] {
  const metrics = createMetrics({ version: 'docs' });
  return [
    { file: METRICS_DOC_FILE, content: renderMetricsDoc(metrics.registry) },
    { file: PROMETHEUS_RULE_FILE, content: renderPrometheusRule(readFileSync(path.join(repoRoot, RULES_FILE), 'utf8')) },
  ];
}

function main(): void {
  const repoRoot = path.resolve(import.meta.dirname, '../..');
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const { file, content } of derivedFiles(repoRoot)) {
    const target = path.join(repoRoot, file);
    let current: string | undefined;
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === content) continue;
    if (check) {
      stale++;
      console.error(`${file} is stale: run npx tsx controller/metrics/generate.ts`);
    } else {
      writeFileSync(target, content);
      console.log(`wrote ${file}`);
    }
  }
  // The default collectors keep timers alive; this is a one-shot script.
  process.exit(stale > 0 ? 1 : 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) main();
