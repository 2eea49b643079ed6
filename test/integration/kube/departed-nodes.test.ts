// A node that leaves for good, against the real apiserver: its Node object is deleted and its agent
// is gone (here: its writer and finalizer are simply never used again). The remaining agent's sweep
// removes its status entry (summary recomputed) and its finalizer once the grace period has passed,
// and deleting the resource then completes instead of staying Terminating.
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckpointReplicaSet, NodeStatus } from '../../../controller/api/types.js';
import { createCrsClient, isApiError } from '../../../controller/kube/client.js';
import { DepartedNodeSweeper } from '../../../controller/kube/departed-nodes.js';
import { NodeFinalizer, finalizerFor } from '../../../controller/kube/finalizers.js';
import { StatusWriter } from '../../../controller/kube/status-writer.js';
import { createResource, eventually, installCrd, k, kubeConfig, testNamespace } from './helpers.js';

const kc = kubeConfig();
const client = createCrsClient(kc);
const core = kc.makeApiClient(CoreV1Api);
const run = Date.now().toString(36);
const [stays, leaves] = [`dep-${run}-a`, `dep-${run}-b`];
let ns: Awaited<ReturnType<typeof testNamespace>>;

beforeAll(async () => {
  await installCrd();
  ns = await testNamespace('kube-departed');
  for (const name of [stays, leaves]) await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name } }));
});
afterAll(async () => {
  for (const name of [stays, leaves]) await k('delete', 'node', name, '--ignore-not-found').catch(() => undefined);
  await ns?.remove();
});

function entry(node: string, n: number): NodeStatus {
  return { node, observedGeneration: 1, replicas: n, readyReplicas: n, restoringReplicas: 0, failedReplicas: 0 };
}

describe('a departed node', () => {
  it('loses its entry and finalizer after the grace period, and deleting the resource then completes', async () => {
    const obj = await createResource(client, ns.name, 'left');
    const ref = { namespace: ns.name, name: 'left', uid: obj.metadata.uid, generation: obj.metadata.generation ?? 1 };
    const agents = [stays, leaves].map((node) => ({
      status: new StatusWriter({ client, node, debounceMs: 0 }),
      finalizer: new NodeFinalizer({ client, node }),
    }));
    for (const [i, a] of agents.entries()) {
      await a.finalizer.ensure(ref);
      await a.status.report(ref, entry(i === 0 ? stays : leaves, i + 2));
    }
    await eventually('both entries and the summary', async () => ((await client.get(ns.name, 'left')).status?.replicas === 5 ? true : undefined));

    let cached: CheckpointReplicaSet[] = [];
    const sweeper = new DepartedNodeSweeper({
      node: stays,
      graceMs: 2000,
      listNodeNames: async () => new Set((await core.listNode()).items.map((n) => n.metadata?.name ?? '')),
      resources: () => cached,
      status: agents[0]!.status,
      finalizer: agents[0]!.finalizer,
      clock: { now: () => Date.now() },
    });
    const sweep = async () => {
      cached = [await client.get(ns.name, 'left')];
      return sweeper.sweep();
    };
    // Both Nodes exist: nothing happens.
    expect(await sweep()).toEqual({ departed: [], cleaned: 0 });
    await k('delete', 'node', leaves);
    expect((await sweep()).departed).toEqual([]); // missing, but not for the grace period yet
    expect((await client.get(ns.name, 'left')).status?.nodes).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 2100));
    expect(await sweep()).toEqual({ departed: [leaves], cleaned: 1 });

    const after = await client.get(ns.name, 'left');
    expect(after.status?.nodes?.map((n) => n.node)).toEqual([stays]);
    expect(after.status).toMatchObject({ replicas: 2, readyReplicas: 2, nodeCount: 1 });
    expect(after.metadata.finalizers).toEqual([finalizerFor(stays)]);
    expect(await sweep()).toEqual({ departed: [], cleaned: 0 }); // nothing names it any more

    // Deleting the resource: the remaining agent releases its own finalizer, and the object is gone.
    await k('-n', ns.name, 'delete', 'crs', 'left', '--wait=false');
    await agents[0]!.finalizer.release(ref);
    await eventually('the resource to be gone', async () =>
      client.get(ns.name, 'left').then(
        () => undefined,
        (err: unknown) => (isApiError(err, 'NotFound') ? true : undefined),
      ),
    );
    await Promise.all(agents.map((a) => a.status.stop()));
  });
});
