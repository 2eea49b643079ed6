// What the end-to-end tests that run the real agent share: a CheckpointReplicaSet manifest of the
// sample workload, and cleaning up after a run (only that run's namespace, node and containers).
import type { RunningAgent } from './agent.js';
import type { Kubectl } from './kubectl.js';
import { containersWithLabel, dockerClient } from './workload.js';
import type { Testbed } from '../testbed.js';

export interface E2eRun {
  namespace: string;
  /** The Node object the test created for its agent, if any. */
  node?: string;
  /** The checkpoint source container. */
  sourceName: string;
}

/** A CheckpointReplicaSet of the sample workload (16 MB), restored from `container`'s checkpoint "warm" (or `path`). */
export function sampleManifest(
  bed: Testbed,
  run: E2eRun,
  name: string,
  replicas: number,
  options: { container?: string; path?: string; image?: string; maxConcurrent?: number; maxAttempts?: number } = {},
): string {
  return JSON.stringify({
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace: run.namespace },
    spec: {
      replicas,
      checkpoint: options.path ? { path: options.path } : { container: options.container ?? run.sourceName, name: 'warm' },
      template: { image: options.image ?? bed.sampleImage, env: [{ name: 'APP_MEMORY_MB', value: '16' }] },
      restore: { maxConcurrent: options.maxConcurrent ?? 10, timeoutSeconds: 60, maxAttempts: options.maxAttempts ?? 3 },
    },
  });
}

/** Stops the agent, deletes the run's namespace and node, removes whatever containers a failed test left. */
export async function cleanUpRun(bed: Testbed, k: Kubectl, run: E2eRun, agent: RunningAgent | undefined): Promise<void> {
  await agent?.kill('SIGTERM');
  await k('delete', 'namespace', run.namespace, '--wait=false').catch(() => undefined);
  if (run.node) await k('delete', 'node', run.node).catch(() => undefined);
  const docker = dockerClient(bed);
  for (const c of await containersWithLabel(bed, 'checkpoint.dev/owner-namespace', run.namespace)) {
    await docker
      .getContainer(c.id)
      .remove({ force: true })
      .catch(() => undefined);
  }
  await docker
    .getContainer(run.sourceName)
    .remove({ force: true })
    .catch(() => undefined);
}
