// Checkpoint bootstrap on several real nodes (issue 16): one agent per node, each on its own Docker
// engine with CRIU (hack/nodes-up.sh), none of which has a checkpoint. Each node bootstraps its own,
// independently: one cold start and restores per node, its own folder on its own engine, its own
// status entry; deleting the resource leaves no checkpoint on any node.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID, START_MODE, TEMPLATE_HASH } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { BOOTSTRAP_FOLDER } from '../../../controller/engine/bootstrap.js';
import { type RunningAgent, startAgent } from '../support/agent.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { nodeTestbeds } from '../support/nodes.js';
import { containersWithLabel, dockerClient } from '../support/workload.js';
import { testbed } from '../testbed.js';

const REPLICAS = 4;
const bed = testbed();
const k = kubectl(bed);
const run = Date.now().toString(36);
const namespace = `bmn-${run}`;
const pool = `bmn-${run}`;
const nodes = nodeTestbeds(bed)
  .slice(0, 2)
  .map((nodeBed, i) => ({ bed: nodeBed, name: `bmn-${run}-n${i + 1}` }));
const agents: RunningAgent[] = [];

const manifest = JSON.stringify({
  apiVersion: 'checkpoint.dev/v1alpha1',
  kind: 'CheckpointReplicaSet',
  metadata: { name: 'app', namespace },
  spec: {
    replicas: REPLICAS,
    nodeSelector: { pool },
    checkpoint: { bootstrap: { warmupSeconds: 2, timeoutSeconds: 60 } },
    template: { image: bed.sampleImage, env: [{ name: 'APP_MEMORY_MB', value: '8' }] },
    restore: { maxConcurrent: 10, timeoutSeconds: 60, maxAttempts: 3 },
  },
});

async function get(): Promise<CheckpointReplicaSet> {
  return k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', 'app');
}

const folderOf = (root: string): string => path.join(root, BOOTSTRAP_FOLDER, namespace);

beforeAll(async () => {
  expect(nodes).toHaveLength(2);
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  for (const n of nodes) await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: n.name, labels: { pool } } }));
  for (const n of nodes) agents.push(await startAgent(n.bed, { nodeName: n.name, namespace, logLevel: 'info' }));
  await Promise.all(agents.map((a) => a.ready()));
}, 180_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill('SIGTERM')));
  await k('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
  for (const n of nodes) {
    await k('delete', 'node', n.name).catch(() => undefined);
    const docker = dockerClient(n.bed);
    for (const c of await containersWithLabel(n.bed, 'checkpoint.dev/owner-namespace', namespace)) {
      await docker
        .getContainer(c.id)
        .remove({ force: true })
        .catch(() => undefined);
    }
    await fs.rm(folderOf(n.bed.dockerRoot), { recursive: true, force: true });
  }
});

describe('checkpoint bootstrap on two nodes', () => {
  it('each node bootstraps its own checkpoint: 1 cold start and N-1 restores per node', async () => {
    await k.apply(manifest);
    const crs = await get();
    await k('-n', namespace, 'wait', 'crs/app', '--for=condition=Ready', '--timeout=240s');
    const status = await get();
    expect(status.status).toMatchObject({ nodeCount: 2, readyReplicas: 2 * REPLICAS });
    const hashes = new Set<string>();
    for (const n of nodes) {
      const replicas = await containersWithLabel(n.bed, OWNER_UID, crs.metadata.uid);
      expect(replicas.map((r) => r.labels[START_MODE]).sort()).toEqual(['bootstrap', ...Array<string>(REPLICAS - 1).fill('restore')]);
      const hash = replicas[0]!.labels[TEMPLATE_HASH] ?? '';
      hashes.add(hash);
      expect(await fs.readdir(path.join(folderOf(n.bed.dockerRoot), 'app', crs.metadata.uid))).toEqual([hash]);
      const entry = status.status?.nodes?.find((e) => e.node === n.name);
      expect(entry?.bootstrap).toMatchObject({ phase: 'Ready', templateHash: hash });
    }
    expect(hashes.size).toBe(1);
  });

  it('delete leaves no container and no checkpoint on any node', async () => {
    const uid = (await get()).metadata.uid;
    await k('-n', namespace, 'delete', 'crs', 'app', '--timeout=120s');
    for (const n of nodes) {
      expect(await containersWithLabel(n.bed, OWNER_UID, uid)).toEqual([]);
      expect(await fs.readdir(folderOf(n.bed.dockerRoot)).catch(() => [])).toEqual([]);
    }
  });
});
