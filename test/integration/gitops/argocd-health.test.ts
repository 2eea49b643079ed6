// The Argo CD health check against the objects captured from the live test bed (testdata/), in
// Argo CD's own test layout, run by gopher-lua as Argo CD runs it; and kstatus on the same objects.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ARGOCD_HEALTH_DIR, type GitopsCheck, gitopsCheck } from '../support/gitops.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const dir = path.join(bed.repoRoot, ARGOCD_HEALTH_DIR);
let tools: GitopsCheck;
let scratch = '';

beforeAll(() => {
  tools = gitopsCheck(bed);
  scratch = mkdtempSync(path.join(tmpdir(), 'crs-argocd-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface HealthTests {
  tests: Array<{ healthStatus: { status: string; message: string }; inputPath: string }>;
}

describe('manifests/argocd health check', () => {
  it('health_test.yaml passes and covers every captured state and every status the script returns', async () => {
    const out = await tools.argocdTest(dir);
    const results = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ok: boolean; inputPath: string });
    expect(results.every((r) => r.ok)).toBe(true);
    const spec = parse(readFileSync(path.join(dir, 'health_test.yaml'), 'utf8')) as HealthTests;
    const listed = spec.tests.map((t) => t.inputPath).sort();
    expect(listed).toEqual(
      readdirSync(path.join(dir, 'testdata'))
        .map((f) => `testdata/${f}`)
        .sort(),
    );
    expect(new Set(spec.tests.map((t) => t.healthStatus.status))).toEqual(new Set(['Healthy', 'Progressing', 'Degraded', 'Suspended']));
  });

  it('the runner fails on a wrong expectation (so a pass means something)', async () => {
    const copy = path.join(scratch, 'wrong');
    cpSync(dir, copy, { recursive: true });
    const file = path.join(copy, 'health_test.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('status: Degraded', 'status: Healthy'));
    await expect(tools.argocdTest(copy)).rejects.toThrow(/1 of 6 health tests failed/);
  });

  it('kstatus, Flux (wait: true) and the documented healthCheckExprs read the captured objects alike', async () => {
    const expected: Record<string, string> = {
      'not-observed.yaml': 'InProgress',
      'progressing.yaml': 'InProgress',
      'healthy.yaml': 'Current',
      'suspended.yaml': 'Failed',
      'degraded.yaml': 'Failed',
      'deleting.yaml': 'Terminating',
    };
    for (const [file, status] of Object.entries(expected)) {
      const object = parse(readFileSync(path.join(dir, 'testdata', file), 'utf8')) as unknown;
      expect({ file, status: (await tools.kstatus(object)).status }).toEqual({ file, status });
      expect({ file, status: (await tools.fluxKstatus(object)).status }).toEqual({ file, status });
      const cel = status === 'Terminating' ? 'InProgress' : status;
      expect({ file, status: (await tools.fluxCel(object)).status }).toEqual({ file, status: cel });
    }
  });
});

describe("README's argocd-cm command", () => {
  it('puts health.lua, byte for byte, under the key Argo CD reads (real kubectl and apiserver)', async () => {
    const readme = readFileSync(path.join(bed.repoRoot, 'README.md'), 'utf8');
    const command = readme.split('\n').find((l) => l.startsWith('kubectl -n argocd patch configmap argocd-cm'));
    expect(command).toBeDefined();
    const namespace = `argocd-${Date.now().toString(36)}`;
    const run = (cmd: string) =>
      execFileSync('bash', ['-c', cmd], {
        cwd: bed.repoRoot,
        encoding: 'utf8',
        env: { ...process.env, KUBECONFIG: bed.kubeconfig, PATH: `${path.dirname(bed.kubectl)}:${process.env.PATH}` },
      });
    try {
      run(`kubectl create namespace ${namespace} && kubectl -n ${namespace} create configmap argocd-cm`);
      run(command!.replace('-n argocd', `-n ${namespace}`));
      const data = JSON.parse(run(`kubectl -n ${namespace} get configmap argocd-cm -o jsonpath='{.data}'`)) as Record<string, string>;
      expect(Object.keys(data)).toEqual(['resource.customizations.health.checkpoint.dev_CheckpointReplicaSet']);
      expect(data['resource.customizations.health.checkpoint.dev_CheckpointReplicaSet']).toBe(readFileSync(path.join(dir, 'health.lua'), 'utf8'));
    } finally {
      run(`kubectl delete namespace ${namespace} --wait=false`);
    }
  });
});
