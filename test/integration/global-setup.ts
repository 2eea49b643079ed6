// Starts the real test bed once for all integration tests: kube-apiserver + etcd (built from
// source by hack/), and the project's Docker engine with CRIU. Tests read where to reach them
// through inject('testbed'). A missing component fails the run; nothing is skipped silently.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { compiledAgent } from './support/agent.js';
import { bringUpTestbed } from './support/testbed-env.js';

export default function setup(project: TestProject): void {
  const repoRoot = path.resolve(import.meta.dirname, '../..');
  // The compiled agent is built from the sources under test, never taken from a stale dist/.
  if (compiledAgent()) execFileSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  project.provide('testbed', bringUpTestbed(repoRoot));
}
