// /healthz and /readyz tell the truth (issue 10): the real agent process, pointed at a socket that a
// test switches between a relay to the real engine and a server that accepts and never answers.
// With work pending and Docker silent, /healthz fails within --wedged-after-seconds (so a kubelet
// would restart the agent) and /readyz fails; both recover once Docker answers, and the resource
// converges. The agent's log carries no MaxListenersExceededWarning through all of it.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { type RunningAgent, startAgent } from '../support/agent.js';
import { DockerSocketSwitch } from '../support/docker-socket-switch.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { checkpointedSource, containersWithLabel, dockerClient } from '../support/workload.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);
const stamp = Date.now().toString(36);
const namespace = `e2e-health-${stamp}`;
const node = `e2e-health-${stamp}`;
const sourceName = `${namespace}-source`;
const WEDGED_AFTER_S = 8;
const DOCKER_TIMEOUT_S = 2;
let agent: RunningAgent | undefined;
let sw: DockerSocketSwitch;

function manifest(replicas: number): string {
  return JSON.stringify({
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name: 'app', namespace },
    spec: {
      replicas,
      checkpoint: { container: sourceName, name: 'warm' },
      template: { image: bed.sampleImage, env: [{ name: 'APP_MEMORY_MB', value: '16' }] },
      restore: { maxConcurrent: 10, timeoutSeconds: 60, maxAttempts: 5 },
    },
  });
}

async function probe(route: '/healthz' | '/readyz'): Promise<{ status: number; body: string }> {
  const res = await fetch(`${agent!.metricsUrl}${route}`);
  return { status: res.status, body: await res.text() };
}

/** Polls `route` until its status is `status`; returns the milliseconds that took. */
async function until(route: '/healthz' | '/readyz', status: number, withinMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if ((await probe(route)).status === status) return Date.now() - t0;
    if (Date.now() - t0 > withinMs) throw new Error(`${route} did not answer ${status} within ${withinMs} ms; see ${agent!.logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function readyReplicas(): Promise<number> {
  return (await k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', 'app')).status?.readyReplicas ?? 0;
}

async function waitReady(n: number, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while ((await readyReplicas()) !== n) {
    if (Date.now() > deadline) throw new Error(`not ${n} ready replicas within ${withinMs} ms; see ${agent!.logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: namespace });
  await fs.mkdir(path.join(bed.repoRoot, '.local'), { recursive: true });
  sw = new DockerSocketSwitch(path.join(bed.repoRoot, '.local', `docker-switch-${stamp}.sock`), bed.dockerSocket, 'proxy');
  await sw.listen();
  agent = await startAgent(bed, {
    nodeName: node,
    namespace,
    dockerSocket: sw.socketPath,
    logLevel: 'info',
    env: { WEDGED_AFTER_SECONDS: String(WEDGED_AFTER_S), DOCKER_TIMEOUT_SECONDS: String(DOCKER_TIMEOUT_S) },
  });
  await agent.ready();
});

afterAll(async () => {
  await agent?.kill('SIGTERM');
  await sw?.close();
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

describe('health that tells the truth', () => {
  it('a Docker that accepts and never answers: /healthz fails within the configured time, and both probes recover with Docker', async () => {
    await k.apply(manifest(2));
    await waitReady(2, 120_000);
    expect((await probe('/healthz')).status).toBe(200);
    expect((await probe('/readyz')).status).toBe(200);

    const switchedAt = Date.now();
    sw.setMode('hang');
    // Work arrives while Docker is silent: the reconcile cannot observe, backs off, retries.
    await k.apply(manifest(3));
    await until('/healthz', 503, (WEDGED_AFTER_S + 20) * 1000);
    // Not before the configured time: Docker answered up to the switch (allow half a second for a
    // call in flight at that moment).
    expect(Date.now() - switchedAt).toBeGreaterThanOrEqual(WEDGED_AFTER_S * 1000 - 500);
    const verdict = await probe('/healthz');
    expect(verdict.body).toMatch(/wedged: \d+ work item\(s\) pending and no progress for \d+ s/);
    expect((await probe('/readyz')).body).toMatch(/Docker engine not answering/);

    sw.setMode('proxy');
    // The agent pings a silent engine every quarter of the wedge time (2 s here): it notices soon.
    const healthyAfter = await until('/healthz', 200, 20_000);
    await until('/readyz', 200, 20_000);
    expect(healthyAfter).toBeLessThan(20_000);
    await waitReady(3, 120_000);
  });

  it('no MaxListenersExceededWarning in the agent log through a 12-replica rollout and its deletion', async () => {
    await k.apply(manifest(12));
    await waitReady(12, 180_000);
    const uid = (await k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', 'app')).metadata.uid;
    // Deletion removes 10 replicas at once on one actor signal: before the fix, its listeners tripped the warning.
    await k('-n', namespace, 'delete', 'crs', 'app', '--timeout=120s');
    expect(await containersWithLabel(bed, OWNER_UID, uid)).toHaveLength(0);
    const log = await fs.readFile(agent!.logFile, 'utf8');
    expect(log).toMatch(/"msg":"containers removed"/);
    expect(log).not.toMatch(/MaxListenersExceededWarning|memory leak detected/);
  });
});
