// The tenant-facing refusals end to end, as a user sees them: the real agent process (as the
// manifests' ServiceAccount), the real apiserver driven with kubectl, the real Docker engine. Each
// refusal shows as Degraded with its reason and an Event; what already runs is kept.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { type RunningAgent, serviceAccountKubeconfig, startAgent } from '../support/agent.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { checkpointedSource, containersWithLabel, dockerClient } from '../support/workload.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);
const stamp = Date.now().toString(36);
const namespace = `sec-e2e-${stamp}`;
const node = `sec-e2e-node-${stamp}`;
const sourceName = `${namespace}-source`;
let agent: RunningAgent | undefined;
let checkpointRoot = '';
let cap = 0;

function manifest(name: string, replicas: number, spec: { path?: string; memory?: string }): string {
  return JSON.stringify({
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace },
    spec: {
      replicas,
      checkpoint: spec.path ? { path: spec.path } : { container: sourceName, name: 'warm' },
      template: {
        image: bed.sampleImage,
        env: [{ name: 'APP_MEMORY_MB', value: '16' }],
        ...(spec.memory ? { resources: { limits: { memory: spec.memory } } } : {}),
      },
      restore: { maxConcurrent: 10, timeoutSeconds: 60, maxAttempts: 3 },
    },
  });
}

async function degraded(name: string, timeoutMs = 120_000): Promise<{ crs: CheckpointReplicaSet; reason: string; message: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const crs = await k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', name);
    const d = crs.status?.conditions?.find((c) => c.type === 'Degraded');
    if (d?.status === 'True') return { crs, reason: d.reason ?? '', message: d.message ?? '' };
    if (Date.now() > deadline) throw new Error(`crs/${name} not Degraded within ${timeoutMs} ms: ${JSON.stringify(crs.status)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function eventsOf(name: string): Promise<string> {
  return k('-n', namespace, 'get', 'events', '--field-selector', `involvedObject.name=${name}`, '-o', 'json');
}

beforeAll(async () => {
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } }));
  const sourceId = await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: namespace });
  // Another namespace's checkpoint on the same host.
  checkpointRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'crs-sec-e2e-'));
  await fs.cp(path.join(bed.dockerRoot, 'containers', sourceId, 'checkpoints', 'warm'), path.join(checkpointRoot, 'other-team', 'app'), { recursive: true });
  // Room for exactly two more replica containers on this host.
  cap = (await containersWithLabel(bed, OWNER_UID)).length + 2;
  agent = await startAgent(bed, {
    nodeName: node,
    namespace,
    checkpointRoot,
    kubeconfig: await serviceAccountKubeconfig(bed, k),
    args: [`--max-replicas-per-host=${cap}`, '--require-memory-limit=true'],
  });
  await agent.ready();
});

afterAll(async () => {
  await agent?.kill('SIGTERM');
  await k('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
  await k('delete', 'node', node).catch(() => undefined);
  const docker = dockerClient(bed);
  for (const c of await containersWithLabel(bed, 'checkpoint.dev/owner-namespace', namespace))
    await docker
      .getContainer(c.id)
      .remove({ force: true })
      .catch(() => undefined);
  await docker
    .getContainer(sourceName)
    .remove({ force: true })
    .catch(() => undefined);
  if (checkpointRoot) await fs.rm(checkpointRoot, { recursive: true, force: true });
});

describe('what a tenant sees when the agent refuses', () => {
  it("another namespace's path source: Degraded CheckpointNotAllowed with an Event, nothing created", async () => {
    await k.apply(manifest('borrow', 2, { path: path.join(checkpointRoot, 'other-team', 'app'), memory: '64Mi' }));
    const d = await degraded('borrow');
    expect(d.reason).toBe('CheckpointNotAllowed');
    expect(d.message).toContain(`${checkpointRoot}/${namespace}/`);
    expect(await eventsOf('borrow')).toContain('CheckpointNotAllowed');
    expect(await containersWithLabel(bed, OWNER_UID, d.crs.metadata.uid)).toHaveLength(0);
  });

  it('no memory limit where the operator requires one: Degraded InvalidSpec naming the field', async () => {
    await k.apply(manifest('unbounded', 1, {}));
    const d = await degraded('unbounded');
    expect(d.reason).toBe('InvalidSpec');
    expect(d.message).toContain('spec.template.resources.limits.memory');
    expect(await containersWithLabel(bed, OWNER_UID, d.crs.metadata.uid)).toHaveLength(0);
  });

  it('beyond --max-replicas-per-host: Degraded QuotaExceeded with an Event, and the replicas that fit keep running', async () => {
    await k.apply(manifest('capped', 4, { memory: '64Mi' }));
    const d = await degraded('capped', 180_000);
    expect(d.reason).toBe('QuotaExceeded');
    expect(d.message).toContain(`--max-replicas-per-host=${cap}`);
    expect(await eventsOf('capped')).toContain('QuotaExceeded');
    const running = await containersWithLabel(bed, OWNER_UID, d.crs.metadata.uid);
    expect(running.filter((c) => c.state === 'running')).toHaveLength(2);
    // Kept, not torn down, a while later.
    await new Promise((r) => setTimeout(r, 5_000));
    expect((await containersWithLabel(bed, OWNER_UID, d.crs.metadata.uid)).filter((c) => c.state === 'running')).toHaveLength(2);
  });
});
