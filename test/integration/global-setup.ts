// Starts the real test bed once for all integration tests: kube-apiserver + etcd (built from
// source by hack/), and the project's Docker engine with CRIU. Tests read where to reach them
// through inject('testbed'). A missing component fails the run; nothing is skipped silently.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import type { Testbed } from './testbed.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');

export default function setup(project: TestProject): void {
  // testbed-up.sh is idempotent: it reuses a control plane and an engine that already run.
  execFileSync('bash', [path.join(repoRoot, 'hack/testbed-up.sh')], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: process.env,
  });
  const env = parseEnvFile(path.join(repoRoot, '.local/testbed.env'));
  const testbed: Testbed = {
    kubeconfig: required(env, 'KUBECONFIG'),
    kubectl: required(env, 'KUBECTL'),
    dockerHost: required(env, 'DOCKER_HOST'),
    dockerSocket: required(env, 'DOCKER_SOCKET'),
    dockerRoot: required(env, 'DOCKER_ROOT'),
    containerdTmp: required(env, 'CONTAINERD_TMP'),
    sampleImage: required(env, 'SAMPLE_IMAGE'),
    repoRoot,
  };
  project.provide('testbed', testbed);
}

function parseEnvFile(file: string): Record<string, string> {
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
