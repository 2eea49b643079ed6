// Renders manifests/monitoring/prometheusrule.yaml from manifests/monitoring/alerts.rules.yaml, the
// one source of the alert rules. Build-time only (imports the `yaml` dev dependency): the agent never
// imports this module. A unit test fails when the committed manifest differs from this rendering.

import { parse, stringify } from 'yaml';

export const RULES_FILE = 'manifests/monitoring/alerts.rules.yaml';
export const PROMETHEUS_RULE_FILE = 'manifests/monitoring/prometheusrule.yaml';

interface RulesFile {
  groups: unknown[];
}

/** Parses a Prometheus rules file just enough to embed it, with a clear error for the wrong shape. */
export function parseRulesFile(text: string, file = RULES_FILE): RulesFile {
  const doc: unknown = parse(text);
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { groups?: unknown }).groups)) {
    throw new Error(`${file}: expected a Prometheus rules file with a top-level "groups" list`);
  }
  return doc as RulesFile;
}

export function renderPrometheusRule(rulesText: string): string {
  const { groups } = parseRulesFile(rulesText);
  const manifest = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'crs-controller',
      labels: {
        'app.kubernetes.io/name': 'crs-controller',
        'app.kubernetes.io/component': 'alerts',
      },
    },
    spec: { groups },
  };
  const header = [
    `# GENERATED from ${RULES_FILE} by \`npm run gen\`. Do not edit:`,
    '# change the rules file and regenerate (test/unit/metrics/monitoring-manifests.test.ts checks it).',
  ].join('\n');
  return `${header}\n${stringify(manifest, { lineWidth: 0 })}`;
}
