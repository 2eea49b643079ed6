// Starts the real test bed once for all integration tests: kube-apiserver + etcd (built from
// source by hack/), and the project's Docker engine with CRIU. Tests read where to reach them
// through inject('testbed'). A missing component fails the run; nothing is skipped silently.
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { bringUpTestbed } from './support/testbed-env.js';

export default function setup(project: TestProject): void {
  project.provide('testbed', bringUpTestbed(path.resolve(import.meta.dirname, '../..')));
}
