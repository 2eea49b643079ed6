// Reads the test bed that hack/testbed-up.sh started (its .local/testbed.env), for the integration
// tests' global setup and for the benchmark, which both run against the same real components.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Testbed } from '../testbed.js';

/**
 * Runs hack/testbed-up.sh (idempotent) and returns where its components are. With
 * CRS_TESTBED_AS_IS=1 it starts nothing and takes the bed as it is, so a stopped component makes
 * its tests fail (which is how the smoke tests are shown to fail for the right reason).
 */
export function bringUpTestbed(repoRoot: string): Testbed {
  if (process.env.CRS_TESTBED_AS_IS !== '1') {
    execFileSync('bash', [path.join(repoRoot, 'hack/testbed-up.sh')], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: process.env,
    });
  }
  const env = parseEnvFile(path.join(repoRoot, '.local/testbed.env'));
  return {
    kubeconfig: required(env, 'KUBECONFIG'),
    kubectl: required(env, 'KUBECTL'),
    dockerHost: required(env, 'DOCKER_HOST'),
    dockerSocket: required(env, 'DOCKER_SOCKET'),
    dockerRoot: required(env, 'DOCKER_ROOT'),
    containerdTmp: required(env, 'CONTAINERD_TMP'),
    sampleImage: required(env, 'SAMPLE_IMAGE'),
    repoRoot,
  };
}

export function parseEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
  }
  return out;
}

function required(env: Record<string, string>, key: string): string {
  const v = env[key];
  if (!v) throw new Error(`hack/testbed-up.sh wrote no ${key} to .local/testbed.env`);
  return v;
}
