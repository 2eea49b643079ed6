import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROMETHEUS_RULE_FILE, RULES_FILE, parseRulesFile, renderPrometheusRule } from '../../../hack/gen/prometheus-rule.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = (): AlertRule[] => (parseRulesFile(read(RULES_FILE)).groups as { rules: AlertRule[] }[]).flatMap((g) => g.rules);

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  return new Set(
    markdown
      .split('\n')
      .filter((l) => /^#{1,6} /.test(l))
      .map((l) =>
        l
          .replace(/^#+ /, '')
          .trim()
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
  );
}

describe('manifests/monitoring', () => {
  it('prometheusrule.yaml embeds exactly the rules of alerts.rules.yaml (regenerate: npm run gen)', () => {
    expect(read(PROMETHEUS_RULE_FILE)).toBe(renderPrometheusRule(read(RULES_FILE)));
    const manifest = parse(read(PROMETHEUS_RULE_FILE)) as { apiVersion: string; kind: string; spec: { groups: unknown } };
    expect(manifest.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(manifest.kind).toBe('PrometheusRule');
    expect(manifest.spec.groups).toEqual(parseRulesFile(read(RULES_FILE)).groups);
  });

  it('has the alerts issue 6 asks for', () => {
    const names = rules().map((r) => r.alert);
    expect(names).toEqual(
      expect.arrayContaining([
        'CrsReplicasBelowDesired',
        'CrsRestoreFailureRatioHigh',
        'CrsAgentAbsent',
        'CrsAgentDown',
        'CrsReconcileErrors',
        'CrsDiskHeadroomLow',
      ]),
    );
    expect(new Set(names).size).toBe(names.length);
  });

  it('every alert has a severity, a summary, a description and a runbook section that exists', () => {
    const runbookAnchors = anchors(read('docs/runbook.md'));
    for (const rule of rules()) {
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      const url = rule.annotations?.runbook_url ?? '';
      expect(url, rule.alert).toBe(`docs/runbook.md#${rule.alert.toLowerCase()}`);
      expect(runbookAnchors.has(url.split('#')[1] ?? ''), `runbook section for ${rule.alert}`).toBe(true);
    }
  });

  it('every runbook section covers meaning, impact, diagnosis and mitigation', () => {
    const runbook = read('docs/runbook.md');
    for (const rule of rules()) {
      const start = runbook.indexOf(`\n## ${rule.alert}\n`);
      expect(start, rule.alert).toBeGreaterThan(0);
      const next = runbook.indexOf('\n## ', start + 1);
      const section = runbook.slice(start, next < 0 ? undefined : next);
      for (const part of ['**Meaning.**', '**Impact.**', '**Diagnosis.**', '**Mitigation.**']) {
        expect(section, `${rule.alert} ${part}`).toContain(part);
      }
    }
  });

  it('the ServiceMonitor scrapes the job the alerts select on, port "metrics"', () => {
    const monitor = parse(read('manifests/monitoring/servicemonitor.yaml')) as {
      kind: string;
      spec: { endpoints: { port: string; path: string; relabelings: { targetLabel: string; replacement?: string }[] }[] };
    };
    expect(monitor.kind).toBe('ServiceMonitor');
    const endpoint = monitor.spec.endpoints[0]!;
    expect(endpoint.port).toBe('metrics');
    expect(endpoint.path).toBe('/metrics');
    const job = endpoint.relabelings.find((r) => r.targetLabel === 'job')?.replacement;
    expect(job).toBe('crs-agent');
    for (const rule of rules()) {
      for (const selector of rule.expr.match(/\{[^}]*\}/g) ?? []) {
        if (selector.includes('job=')) expect(selector, rule.alert).toContain(`job="${job}"`);
      }
    }
  });

  it('is a kustomization of its own, kept out of the base (the base applies without the Prometheus Operator)', () => {
    const kustomization = parse(read('manifests/monitoring/kustomization.yaml')) as { namespace: string; resources: string[] };
    expect(kustomization.resources.sort()).toEqual(['metrics-reader-binding.yaml', 'prometheusrule.yaml', 'servicemonitor.yaml']);
    const base = parse(read('manifests/kustomization.yaml')) as { resources: string[] };
    expect(base.resources.filter((r) => r.includes('monitoring'))).toEqual([]);
    expect(kustomization.namespace).toBe('crs-system');
  });

  it('the ServiceMonitor scrapes over HTTPS with its bearer token, as a user bound to the metrics-reader ClusterRole (issue 9)', () => {
    const monitor = parse(read('manifests/monitoring/servicemonitor.yaml')) as {
      spec: { endpoints: { scheme: string; bearerTokenFile: string; tlsConfig: Record<string, unknown> }[] };
    };
    expect(monitor.spec.endpoints[0]).toMatchObject({ scheme: 'https', bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' });
    const binding = parse(read('manifests/monitoring/metrics-reader-binding.yaml')) as { roleRef: { name: string } };
    const role = parse(read('manifests/metrics-reader-clusterrole.yaml')) as { metadata: { name: string }; rules: unknown[] };
    expect(binding.roleRef.name).toBe(role.metadata.name);
    expect(role.rules).toEqual([{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]);
  });

  it("the ServiceMonitor selects the base's metrics Service and its port", () => {
    const service = parse(read('manifests/service.yaml')) as {
      metadata: { namespace: string; labels: Record<string, string> };
      spec: { ports: { name: string; port: number }[] };
    };
    const monitor = parse(read('manifests/monitoring/servicemonitor.yaml')) as {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
    };
    expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(service.spec.ports.map((p) => p.name)).toContain(monitor.spec.endpoints[0]!.port);
    expect(service.spec.ports.find((p) => p.name === 'metrics')?.port).toBe(9464);
  });
});
