// End to end: a real Prometheus scrapes the running agent during a rollout, and the agent rides out
// a restart of the Docker engine in the middle of one. Real agent process, apiserver, engine, Prometheus.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID, REPLICA_ID } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { type RunningAgent, startAgent } from '../support/agent.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { startPrometheus } from '../support/prometheus.js';
import { checkpointedSource, containersWithLabel, dockerClient } from '../support/workload.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);
const namespace = `e2e-rec-${Date.now().toString(36)}`;
const node = `e2e-rec-${Date.now().toString(36)}`;
const sourceName = `${namespace}-source`;
let agent: RunningAgent | undefined;

function manifest(name: string, replicas: number): string {
  return JSON.stringify({
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace },
    spec: {
      replicas,
      checkpoint: { container: sourceName, name: 'warm' },
      template: { image: bed.sampleImage, env: [{ name: 'APP_MEMORY_MB', value: '16' }] },
      restore: { maxConcurrent: 10, timeoutSeconds: 60, maxAttempts: 5 },
    },
  });
}

async function uidOf(name: string): Promise<string> {
  return (await k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', name)).metadata.uid;
}

beforeAll(async () => {
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: namespace });
  agent = await startAgent(bed, { nodeName: node, namespace, resyncSeconds: 15 });
  await agent.ready();
});

afterAll(async () => {
  await agent?.kill('SIGTERM');
  await k('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
  const docker = dockerClient(bed);
  for (const c of await containersWithLabel(bed, 'checkpoint.dev/owner-namespace', namespace)) {
    await docker
      .getContainer(c.id)
      .remove({ force: true })
      .catch(() => undefined);
  }
  await docker
    .getContainer(sourceName)
    .remove({ force: true })
    .catch(() => undefined);
});

describe('observability and recovery', () => {
  it('is scraped by a real Prometheus, where crs_replicas_ready reaches the desired count', async () => {
    const prometheus = await startPrometheus({
      jobs: [{ job: 'crs-agent', targets: [new URL(agent!.metricsUrl).host] }],
      ruleFiles: [path.join(bed.repoRoot, 'manifests/monitoring/alerts.rules.yaml')],
    });
    try {
      await k.apply(manifest('scraped', 6));
      const ready = await prometheus.waitFor(
        `crs_replicas_ready{namespace="${namespace}",name="scraped",node="${node}"}`,
        (samples) => samples[0]?.value === 6,
        180_000,
      );
      expect(ready[0]?.value).toBe(6);
      const desired = await prometheus.query(`crs_replicas_desired{namespace="${namespace}",name="scraped"}`);
      expect(desired[0]?.value).toBe(6);
      const restores = await prometheus.query(`sum(crs_restores_total{namespace="${namespace}",name="scraped",result="success"})`);
      expect(restores[0]?.value).toBeGreaterThanOrEqual(6);
      const limit = await prometheus.query(`crs_restore_concurrency_limit{node="${node}"}`);
      expect(limit[0]?.value).toBe(10);
      // The agent is up and no alert about it fires.
      const up = await prometheus.query('up{job="crs-agent"}');
      expect(up[0]?.value).toBe(1);
    } finally {
      await prometheus.stop();
    }
    await k('-n', namespace, 'delete', 'crs', 'scraped', '--timeout=120s');
  });

  it('recovers and converges when the Docker engine restarts during a rollout', async () => {
    await k.apply(manifest('restart', 12));
    const uid = await uidOf('restart');
    const deadline = Date.now() + 120_000;
    while ((await containersWithLabel(bed, OWNER_UID, uid)).filter((c) => c.state === 'running').length < 3) {
      if (Date.now() > deadline) throw new Error('no 3 replicas running within 120 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    // Restart the project's engine the way an operator would; its containers stop with it.
    execFileSync('bash', [path.join(bed.repoRoot, 'hack/engine-down.sh')], { stdio: 'inherit' });
    execFileSync('bash', [path.join(bed.repoRoot, 'hack/engine-up.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
    // The source container was stopped by the checkpoint already; its checkpoint survives the restart.
    await k('-n', namespace, 'wait', 'crs/restart', '--for=condition=Ready', '--timeout=300s');
    const all = await containersWithLabel(bed, OWNER_UID, uid);
    expect(all.filter((c) => c.state === 'running')).toHaveLength(12);
    expect(all).toHaveLength(12);
    expect(new Set(all.map((c) => c.labels[REPLICA_ID])).size).toBe(12);
    await k('-n', namespace, 'delete', 'crs', 'restart', '--timeout=120s');
    expect(await containersWithLabel(bed, OWNER_UID, uid)).toHaveLength(0);
  });
});
