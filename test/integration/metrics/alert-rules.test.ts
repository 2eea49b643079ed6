// The alert rules checked and unit-tested by the real promtool (Debian's prometheus package), and
// the PrometheusRule that `kubectl kustomize` builds checked the same way.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { testbed } from '../testbed.js';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../../..');
const rulesFile = path.join(repoRoot, 'manifests/monitoring/alerts.rules.yaml');
const testsFile = path.join(repoRoot, 'manifests/monitoring/tests/alerts.test.yaml');
const scratch = mkdtempSync(path.join(tmpdir(), 'crs-promtool-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs promtool; resolves with its output, or fails the test with promtool's own report. */
async function promtool(...args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: repoRoot });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new Error('promtool is not on PATH: apt-get install -y prometheus (hack/install-tools.sh does it)', { cause: error });
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}

interface RuleTest {
  name?: string;
  alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[];
}

describe('alert rules under promtool', () => {
  it('promtool check rules accepts alerts.rules.yaml', async () => {
    const result = await promtool('check', 'rules', rulesFile);
    expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(result.ok, result.output).toBe(true);
  });

  it('promtool test rules passes every firing and not-firing case', async () => {
    const result = await promtool('test', 'rules', testsFile);
    expect(result.ok, result.output).toBe(true);
    expect(result.output).toContain('SUCCESS');
  });

  it('every alert has at least one case where it fires and one where it must not', () => {
    const alerts = (parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: { alert?: string }[] }[] }).groups
      .flatMap((g) => g.rules)
      .flatMap((r) => (r.alert ? [r.alert] : []));
    const cases = (parse(readFileSync(testsFile, 'utf8')) as { tests: RuleTest[] }).tests.flatMap((t) => t.alert_rule_test ?? []);
    expect(alerts.length).toBeGreaterThanOrEqual(6);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${alert} has a firing case`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${alert} has a not-firing case`,
      ).toBe(true);
    }
  });

  it('the promtool tests catch a changed rule (they are not vacuous)', async () => {
    // Same tests against a rules file whose failure-ratio threshold and disk factor were weakened.
    const dir = path.join(scratch, 'mutant');
    mkdirSync(path.join(dir, 'tests'), { recursive: true });
    copyFileSync(testsFile, path.join(dir, 'tests/alerts.test.yaml'));
    const original = readFileSync(rulesFile, 'utf8');
    const mutant = original
      .replace(') > 0.2', ') > 0.5')
      .replace('crs_restore_concurrency_limit{job="crs-agent"} * 3', 'crs_restore_concurrency_limit{job="crs-agent"} * 1');
    expect(mutant).not.toBe(original);
    writeFileSync(path.join(dir, 'alerts.rules.yaml'), mutant);
    const result = await promtool('test', 'rules', path.join(dir, 'tests/alerts.test.yaml'));
    expect(result.ok).toBe(false);
    expect(result.output).toContain('CrsRestoreFailureRatioHigh');
    expect(result.output).toContain('CrsDiskHeadroomLow');
  });

  it('the PrometheusRule built by `kubectl kustomize manifests/monitoring` holds rules promtool accepts', async () => {
    const { kubectl } = testbed();
    const { stdout } = await run(kubectl, ['kustomize', path.join(repoRoot, 'manifests/monitoring')]);
    const objects = parseAllDocuments(stdout).map((d) => d.toJS() as { kind: string; metadata: { namespace?: string }; spec: { groups?: unknown } });
    // The ClusterRoleBinding (cluster-scoped) lets Prometheus read the agents' secured /metrics (issue 9).
    expect(objects.map((o) => o.kind).sort()).toEqual(['ClusterRoleBinding', 'PrometheusRule', 'ServiceMonitor']);
    for (const o of objects.filter((x) => x.kind !== 'ClusterRoleBinding')) expect(o.metadata.namespace).toBe('crs-system');
    const rule = objects.find((o) => o.kind === 'PrometheusRule')!;
    const extracted = path.join(scratch, 'from-prometheusrule.yaml');
    writeFileSync(extracted, stringify({ groups: rule.spec.groups }));
    const result = await promtool('check', 'rules', extracted);
    expect(result.ok, result.output).toBe(true);
    expect(rule.spec.groups).toEqual((parse(readFileSync(rulesFile, 'utf8')) as { groups: unknown }).groups);
  });
});
