// Nodes joining, failing, restarting and leaving, end to end: one real agent process per node, each
// on its own Docker engine with CRIU (hack/nodes-up.sh, 4 engines), its own Node object, all against
// the one apiserver. Small replica counts (5 per node): the 45-per-node rollout is multinode.test.ts.
//
// The cases run in order on one resource (`app`), as a fleet lives: 3 nodes converge and kubectl
// shows the per-node picture; a missing image on node 2 stays on node 2 (its own resource); a 4th
// node joins by getting the selected label; node 2's agent restarts; node 3 leaves for good, and the
// resource's deletion completes afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE, OWNER_UID } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet, NodeStatus } from '../../../controller/api/types.js';
import { finalizerFor } from '../../../controller/kube/finalizers.js';
import { eventually } from '../kube/helpers.js';
import { type RunningAgent, startAgent } from '../support/agent.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { nodeTestbeds } from '../support/nodes.js';
import { checkpointedSource, containersWithLabel, dockerClient, removeTestContainers } from '../support/workload.js';
import { type Testbed, testbed } from '../testbed.js';

const REPLICAS = 5;
/** How long a Node must be missing before the remaining agents drop its entry and finalizer. */
const GRACE_SECONDS = 5;
const bed = testbed();
const k = kubectl(bed);
const run = Date.now().toString(36);
const namespace = `mm-${run}`;
const pool = `mm-${run}`;
const sourceName = `${namespace}-source`;
/** A tag of the sample image that only nodes 1 and 3 get (the missing-image case). */
const partialRepo = bed.sampleImage.replace(/:[^:/]*$/, '');
const partialImage = `${partialRepo}:${namespace}`;
const nodes = nodeTestbeds(bed)
  .slice(0, 4)
  .map((nodeBed, i) => ({ bed: nodeBed, name: `mm-${run}-n${i + 1}` }));
const [n1, n2, n3, n4] = nodes;
const agents = new Map<string, RunningAgent>();

function manifest(name: string, image = bed.sampleImage): string {
  return JSON.stringify({
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace },
    spec: {
      replicas: REPLICAS,
      nodeSelector: { pool },
      checkpoint: { container: sourceName, name: 'warm' },
      template: { image, env: [{ name: 'APP_MEMORY_MB', value: '16' }] },
      restore: { maxConcurrent: 10, timeoutSeconds: 60, maxAttempts: 3 },
    },
  });
}

async function get(name: string): Promise<CheckpointReplicaSet> {
  return k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', name);
}

function entry(crs: CheckpointReplicaSet, node: string): NodeStatus | undefined {
  return crs.status?.nodes?.find((n) => n.node === node);
}

function node(n: (typeof nodes)[number] | undefined): { bed: Testbed; name: string } {
  if (!n) throw new Error('fewer than 4 node engines: hack/testbed-up.sh starts NODES=4 by default');
  return n;
}

async function ownedIds(nodeBed: Testbed, uid: string): Promise<string[]> {
  return (await containersWithLabel(nodeBed, OWNER_UID, uid)).map((c) => c.id).sort();
}

/** All of the node's replicas of `uid` running, REPLICAS of them, labelled with the node. */
async function runningOn(n: { bed: Testbed; name: string }, uid: string): Promise<boolean> {
  const mine = await containersWithLabel(n.bed, OWNER_UID, uid);
  return mine.length === REPLICAS && mine.every((c) => c.state === 'running' && c.labels[NODE] === n.name);
}

async function startNodeAgent(n: { bed: Testbed; name: string }): Promise<RunningAgent> {
  const agent = await startAgent(n.bed, {
    nodeName: n.name,
    namespace,
    logLevel: 'info',
    args: ['--departed-node-grace-seconds', String(GRACE_SECONDS)],
  });
  agents.set(n.name, agent);
  await agent.ready();
  return agent;
}

beforeAll(async () => {
  expect(nodes).toHaveLength(4);
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  for (const n of nodes) {
    // Node 4 exists but is not selected yet: it joins by getting the label (the boot case).
    const labels = n === n4 ? {} : { pool };
    await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: n.name, labels } }));
    await checkpointedSource(n.bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: namespace });
  }
  for (const n of [n1, n3]) await dockerClient(node(n).bed).getImage(bed.sampleImage).tag({ repo: partialRepo, tag: namespace });
  await Promise.all(nodes.map((n) => startNodeAgent(n)));
}, 240_000);

afterAll(async () => {
  await Promise.all([...agents.values()].map((a) => a.kill('SIGTERM')));
  await k('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
  for (const n of nodes) {
    await k('delete', 'node', n.name).catch(() => undefined);
    await removeTestContainers(n.bed, namespace, [sourceName]);
    await dockerClient(n.bed)
      .getImage(partialImage)
      .remove()
      .catch(() => undefined);
  }
}, 120_000);

describe('nodes joining and leaving one CheckpointReplicaSet', () => {
  let uid = '';
  /** Container ids per node once the first 3 nodes converged. */
  const before = new Map<string, string[]>();

  it('converges on the 3 selected nodes, and kubectl get -o wide and describe show the per-node picture', async () => {
    await k.apply(manifest('app'));
    uid = (await get('app')).metadata.uid;
    await k('-n', namespace, 'wait', 'crs/app', '--for=condition=Ready', '--timeout=300s');
    const crs = await eventually('3 entries and the summary of 15', async () => {
      const c = await get('app');
      return c.status?.readyReplicas === 3 * REPLICAS && c.status.nodeCount === 3 ? c : undefined;
    });
    for (const n of [n1, n2, n3].map(node)) {
      expect(entry(crs, n.name)).toMatchObject({ replicas: REPLICAS, readyReplicas: REPLICAS });
      expect(await runningOn(n, uid)).toBe(true);
      before.set(n.name, await ownedIds(n.bed, uid));
    }
    expect(await ownedIds(node(n4).bed, uid)).toEqual([]);

    const [header = '', row = ''] = (await k('-n', namespace, 'get', 'crs', 'app', '-o', 'wide')).trimEnd().split('\n');
    const columns = header.split(/\s{2,}/);
    const cells = row.split(/\s{2,}/);
    const cell = (column: string): string | undefined => cells[columns.indexOf(column)];
    expect(columns).toEqual(expect.arrayContaining(['NAME', 'DESIRED', 'READY', 'FAILED', 'NODES']));
    expect(cell('NAME')).toBe('app');
    expect(cell('DESIRED')).toBe(String(REPLICAS));
    expect(cell('READY')).toBe(String(3 * REPLICAS));
    expect(cell('FAILED')).toBe('0');
    expect(cell('NODES')).toBe('3');

    const described = await k('-n', namespace, 'describe', 'crs', 'app');
    expect(described).toMatch(/Node Count:\s+3\n/);
    // One block per node under Status > Nodes, each with its node's own counts.
    const blocks = described.split(/\n\s+Node:\s+/).slice(1);
    expect(blocks.map((b) => b.split('\n')[0]?.trim()).sort()).toEqual([n1, n2, n3].map((n) => node(n).name).sort());
    for (const b of blocks) expect(b).toMatch(new RegExp(`Ready Replicas:\\s+${REPLICAS}\\n`));
  }, 420_000);

  it("keeps a missing image on node 2 on node 2's entry, names node 2 in Degraded, and nodes 1 and 3 converge", async () => {
    await k.apply(manifest('img', partialImage));
    const imgUid = (await get('img')).metadata.uid;
    const [one, two, three] = [n1, n2, n3].map((n) => node(n).name);
    const crs = await eventually(
      'node 2 Degraded, nodes 1 and 3 ready, and the summary caught up',
      async () => {
        const c = await get('img');
        const degraded = entry(c, two ?? '')?.conditions?.find((x) => x.type === 'Degraded');
        const fine = [one, three].every((n) => entry(c, n ?? '')?.readyReplicas === REPLICAS);
        const top = c.status?.conditions?.find((x) => x.type === 'Degraded');
        return degraded?.status === 'True' && fine && c.status?.readyReplicas === 2 * REPLICAS && top?.status === 'True' ? c : undefined;
      },
      300_000,
    );
    const degraded = entry(crs, two ?? '')?.conditions?.find((x) => x.type === 'Degraded');
    expect(degraded?.reason).toBe('ImageNotFound');
    expect(degraded?.message).toContain(partialImage);
    expect(entry(crs, two ?? '')?.readyReplicas).toBe(0);
    expect(crs.status?.conditions?.find((x) => x.type === 'Degraded')?.message).toContain(two);
    for (const n of [one, three]) expect(entry(crs, n ?? '')?.conditions?.find((x) => x.type === 'Degraded')?.status).not.toBe('True');
    expect(await runningOn(node(n1), imgUid)).toBe(true);
    expect(await runningOn(node(n3), imgUid)).toBe(true);
    expect((await containersWithLabel(node(n2).bed, OWNER_UID, imgUid)).filter((c) => c.state === 'running')).toEqual([]);
    await k('-n', namespace, 'delete', 'crs', 'img', '--timeout=120s');
  }, 420_000);

  it('the boot case: a 4th node that gets the selected label restores its replicas, the others untouched', async () => {
    const fourth = node(n4);
    await k('label', 'node', fourth.name, `pool=${pool}`);
    await eventually('node 4 restored its replicas', async () => ((await runningOn(fourth, uid)) ? true : undefined), 240_000);
    const crs = await eventually(
      'the summary of 4 nodes',
      async () => {
        const c = await get('app');
        return c.status?.readyReplicas === 4 * REPLICAS && c.status.replicas === 4 * REPLICAS && c.status.nodeCount === 4 ? c : undefined;
      },
      60_000,
    );
    expect(entry(crs, fourth.name)).toMatchObject({ replicas: REPLICAS, readyReplicas: REPLICAS });
    for (const n of [n1, n2, n3].map(node)) expect(await ownedIds(n.bed, uid)).toEqual(before.get(n.name));
  }, 360_000);

  it('a node briefly away (its agent killed and started again) keeps its entry, and its replicas are adopted, not duplicated', async () => {
    const second = node(n2);
    await agents.get(second.name)?.kill('SIGKILL');
    // Longer than the departed-node grace: the Node still exists, so the entry must stay.
    await new Promise((r) => setTimeout(r, 2 * GRACE_SECONDS * 1000));
    expect(entry(await get('app'), second.name)).toMatchObject({ replicas: REPLICAS });
    await startNodeAgent(second);
    const crs = await eventually(
      'node 2 reported again after its restart',
      async () => {
        const c = await get('app');
        const e = entry(c, second.name);
        return e?.readyReplicas === REPLICAS && c.status?.readyReplicas === 4 * REPLICAS && c.status.observedGeneration === c.metadata.generation
          ? c
          : undefined;
      },
      120_000,
    );
    expect(crs.status?.nodeCount).toBe(4);
    // Give a wrongly restoring agent time to show itself: the next resync would have created copies.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await ownedIds(second.bed, uid)).toEqual(before.get(second.name));
    expect(await runningOn(second, uid)).toBe(true);
  }, 240_000);

  it('a node gone for good (agent stopped, Node deleted) leaves status.nodes, the summary follows, and deleting the resource completes', async () => {
    const third = node(n3);
    await agents.get(third.name)?.kill('SIGTERM');
    agents.delete(third.name);
    await k('delete', 'node', third.name);
    const crs = await eventually(
      'node 3 gone from status.nodes, the summary recomputed, its finalizer released',
      async () => {
        const c = await get('app');
        const gone = !entry(c, third.name) && !(c.metadata.finalizers ?? []).includes(finalizerFor(third.name));
        return gone && c.status?.nodeCount === 3 && c.status.replicas === 3 * REPLICAS && c.status.readyReplicas === 3 * REPLICAS ? c : undefined;
      },
      120_000,
    );
    expect(crs.status?.nodes?.map((n) => n.node).sort()).toEqual([n1, n2, n4].map((n) => node(n).name).sort());
    await k('-n', namespace, 'delete', 'crs', 'app', '--timeout=120s');
    await expect(get('app')).rejects.toThrow(/NotFound|not found/);
    for (const n of [n1, n2, n4].map(node)) expect(await ownedIds(n.bed, uid)).toEqual([]);
  }, 300_000);
});
