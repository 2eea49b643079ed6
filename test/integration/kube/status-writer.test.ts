// The status writer against the real apiserver: two agents writing at once never clobber each
// other (server-side apply, one field manager per node), a summary derived from a stale view gets a
// real 409 and is dropped while the later writer's summary is right, bursts are coalesced (counted
// on a real watch), and kubectl sees the aggregated conditions.
import { Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckpointReplicaSet, Condition, NodeStatus } from '../../../controller/api/types.js';
import { createCrsClient, crsPath, type CrsClient } from '../../../controller/kube/client.js';
import { StatusWriter } from '../../../controller/kube/status-writer.js';
import { createResource, eventually, installCrd, k, kubeConfig, testNamespace } from './helpers.js';

const kc = kubeConfig();
const client = createCrsClient(kc);
let ns: Awaited<ReturnType<typeof testNamespace>>;

beforeAll(async () => {
  await installCrd();
  ns = await testNamespace('kube-status');
});
afterAll(async () => {
  await ns?.remove();
});

function conditions(ready: boolean, generation: number): Condition[] {
  return [
    {
      type: 'Ready',
      status: ready ? 'True' : 'False',
      reason: ready ? 'AllReplicasReady' : 'ReplicasNotReady',
      message: ready ? 'all ready' : 'restoring',
      lastTransitionTime: '',
      observedGeneration: generation,
    },
    {
      type: 'Progressing',
      status: ready ? 'False' : 'True',
      reason: ready ? 'Converged' : 'Restoring',
      message: '',
      lastTransitionTime: '',
      observedGeneration: generation,
    },
    { type: 'Degraded', status: 'False', reason: 'AsExpected', message: '', lastTransitionTime: '', observedGeneration: generation },
  ];
}

function entry(node: string, ready: number, desired: number, generation = 1): NodeStatus {
  return {
    node,
    observedGeneration: generation,
    replicas: desired,
    readyReplicas: ready,
    restoringReplicas: desired - ready,
    failedReplicas: 0,
    conditions: conditions(ready === desired, generation).map((c) => ({ ...c, message: c.message || 'ok' })),
  };
}

function refOf(obj: CheckpointReplicaSet) {
  return { namespace: obj.metadata.namespace, name: obj.metadata.name, uid: obj.metadata.uid, generation: obj.metadata.generation ?? 1 };
}

/** Counts MODIFIED events of one resource on a real watch. */
async function watchModifications(namespace: string, name: string) {
  const seen: string[] = [];
  const controller = await new Watch(kc).watch(
    crsPath(namespace),
    { fieldSelector: `metadata.name=${name}` },
    (phase, obj: CheckpointReplicaSet) => {
      if (phase === 'MODIFIED') seen.push(obj.metadata.resourceVersion ?? '');
    },
    () => undefined,
  );
  return { seen, stop: () => controller.abort() };
}

describe('StatusWriter against the real apiserver', () => {
  it('two nodes reporting concurrently keep both entries, and the sums are over both', async () => {
    const obj = await createResource(client, ns.name, 'two-nodes', { replicas: 12 });
    const ref = refOf(obj);
    // No debounce and no pacing: maximise real races on the apiserver.
    const a = new StatusWriter({ client, node: 'node-a', debounceMs: 0, minIntervalMs: 0 });
    const b = new StatusWriter({ client, node: 'node-b', debounceMs: 0, minIntervalMs: 0 });
    const reports: Array<Promise<void>> = [];
    for (let i = 0; i <= 12; i++) {
      reports.push(a.report(ref, entry('node-a', i, 12)));
      reports.push(b.report(ref, entry('node-b', Math.max(0, i - 2), 12)));
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(reports);
    await a.flush();
    await b.flush();
    const stored = await client.get(ns.name, 'two-nodes');
    const nodes = Object.fromEntries((stored.status?.nodes ?? []).map((n) => [n.node, n]));
    expect(Object.keys(nodes).sort()).toEqual(['node-a', 'node-b']);
    expect(nodes['node-a']).toMatchObject({ readyReplicas: 12, replicas: 12 });
    expect(nodes['node-b']).toMatchObject({ readyReplicas: 10, restoringReplicas: 2 });
    expect(stored.status).toMatchObject({ replicas: 24, readyReplicas: 22, restoringReplicas: 2, failedReplicas: 0, observedGeneration: 1 });
    const ready = stored.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'ReplicasNotReady', message: 'node node-b: restoring' });
    expect(stored.status?.selector).toBe(`checkpoint.dev/owner-uid=${obj.metadata.uid}`);
    const stats = [a.stats(), b.stats()];
    expect(stats.every((s) => s.failures === 0)).toBe(true);
    // Each entry belongs to its node's field manager; the summary to the shared one.
    const managed = JSON.parse(await k('get', 'crs', 'two-nodes', '-n', ns.name, '-o', 'json', '--show-managed-fields')) as {
      metadata: { managedFields: Array<{ manager: string; subresource?: string; fieldsV1: { 'f:status'?: Record<string, unknown> } }> };
    };
    const owns = (manager: string) =>
      JSON.stringify(managed.metadata.managedFields.find((m) => m.manager === manager && m.subresource === 'status')?.fieldsV1 ?? {});
    expect(owns('crs-agent/node-a')).toContain('k:{\\"node\\":\\"node-a\\"}');
    expect(owns('crs-agent/node-a')).not.toContain('node-b');
    expect(owns('crs-agent/node-b')).toContain('k:{\\"node\\":\\"node-b\\"}');
    expect(owns('crs-controller')).toContain('f:readyReplicas');
    expect(owns('crs-controller')).not.toContain('f:nodes');
    console.info('two-node race stats', JSON.stringify(stats));
  });

  it("a summary derived from a stale view gets a real 409 and is dropped; the later writer's summary is right", async () => {
    const obj = await createResource(client, ns.name, 'stale');
    const ref = refOf(obj);
    const other = new StatusWriter({ client, node: 'node-b', debounceMs: 0 });
    let raced = false;
    // Right after node-a's entry is stored, node-b really writes its entry and summary: the
    // resourceVersion node-a derived its summary from is stale.
    const racing: CrsClient = {
      ...client,
      applyStatus: async (apply) => {
        const answer = await client.applyStatus(apply);
        if (!raced && apply.fieldManager === 'crs-agent/node-a') {
          raced = true;
          await other.report(ref, entry('node-b', 3, 3));
        }
        return answer;
      },
    };
    const a = new StatusWriter({ client: racing, node: 'node-a', debounceMs: 0 });
    await a.report(ref, entry('node-a', 1, 3));
    expect(a.stats()).toMatchObject({ conflicts: 1, writes: 1, summaryWrites: 0, failures: 0 });
    expect(other.stats()).toMatchObject({ conflicts: 0, summaryWrites: 1 });
    const stored = await client.get(ns.name, 'stale');
    expect(stored.status?.nodes?.map((n) => n.node).sort()).toEqual(['node-a', 'node-b']);
    expect(stored.status).toMatchObject({ replicas: 6, readyReplicas: 4, nodeCount: 2 });
  });

  it('coalesces a burst into one round (entry + summary, counted on a watch) and skips writes that change nothing', async () => {
    const obj = await createResource(client, ns.name, 'burst');
    const ref = refOf(obj);
    const watch = await watchModifications(ns.name, 'burst');
    try {
      const writer = new StatusWriter({ client, node: 'node-a', debounceMs: 250 });
      await Promise.all(Array.from({ length: 50 }, (_, i) => writer.report(ref, entry('node-a', Math.floor(i / 5), 10))));
      expect(writer.stats()).toMatchObject({ writes: 2, summaryWrites: 1, failures: 0 });
      const afterBurst = (await client.get(ns.name, 'burst')).metadata.resourceVersion ?? '';
      await eventually('the watch to see the write', () => (watch.seen.includes(afterBurst) ? true : undefined));
      expect(watch.seen).toHaveLength(2);
      expect(watch.seen[1]).toBe(afterBurst);
      expect((await client.get(ns.name, 'burst')).status?.readyReplicas).toBe(9);

      // The same state again: read, compared, not written.
      await writer.report(ref, entry('node-a', 9, 10));
      expect(writer.stats()).toMatchObject({ writes: 2, unchanged: 1 });
      // A real change next: the watch sees exactly one more round (entry + summary), none in between.
      await writer.report(ref, entry('node-a', 10, 10));
      const last = (await client.get(ns.name, 'burst')).metadata.resourceVersion ?? '';
      await eventually('the watch to see the second write', () => (watch.seen.includes(last) ? true : undefined));
      expect(watch.seen).toHaveLength(4);
      expect(watch.seen.slice(0, 2)[1]).toBe(afterBurst);
      expect(watch.seen[3]).toBe(last);
    } finally {
      watch.stop();
    }
  });

  it('kubectl sees the aggregated Ready condition (kubectl wait) and the counts (kubectl get)', async () => {
    const obj = await createResource(client, ns.name, 'ready', { replicas: 2 });
    const ref = refOf(obj);
    const a = new StatusWriter({ client, node: 'node-a', debounceMs: 0 });
    const b = new StatusWriter({ client, node: 'node-b', debounceMs: 0 });
    await a.report(ref, entry('node-a', 2, 2));
    let stored = await client.get(ns.name, 'ready');
    expect(stored.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    await b.report(ref, entry('node-b', 1, 2));
    stored = await client.get(ns.name, 'ready');
    expect(stored.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', message: 'node node-b: restoring' });
    await b.report(ref, entry('node-b', 2, 2));
    await k('wait', '--for=condition=Ready', `crs/ready`, '-n', ns.name, '--timeout=30s');
    const row = await k('get', 'crs', 'ready', '-n', ns.name, '--no-headers');
    expect(row.trim().split(/\s+/).slice(0, 5)).toEqual(['ready', '2', '4', '0', '0']);
  });
});
