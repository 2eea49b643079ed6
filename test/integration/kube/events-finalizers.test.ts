// Events and finalizers against the real apiserver: repeats aggregate into one Event whose count
// grows and which `kubectl describe` shows; a storm is capped; per-node finalizers are added and
// removed by conflict-safe JSON patches that leave every other finalizer alone.
import type { CoreV1Event } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { createCrsClient, type CrsClient } from '../../../controller/kube/client.js';
import { KubeEventRecorder, createEventSink } from '../../../controller/kube/events.js';
import { FinalizerError, NodeFinalizer } from '../../../controller/kube/finalizers.js';
import { createResource, installCrd, k, kubeConfig, testNamespace } from './helpers.js';

const kc = kubeConfig();
const client = createCrsClient(kc);
let ns: Awaited<ReturnType<typeof testNamespace>>;

beforeAll(async () => {
  await installCrd();
  ns = await testNamespace('kube-events');
});
afterAll(async () => {
  await ns?.remove();
});

function refOf(obj: CheckpointReplicaSet) {
  return { namespace: obj.metadata.namespace, name: obj.metadata.name, uid: obj.metadata.uid, generation: obj.metadata.generation ?? 1 };
}

async function eventsOf(obj: CheckpointReplicaSet): Promise<CoreV1Event[]> {
  const list = await k.json<{ items: CoreV1Event[] }>(
    'get',
    'events',
    '-n',
    obj.metadata.namespace,
    '--field-selector',
    `involvedObject.uid=${obj.metadata.uid}`,
  );
  return list.items;
}

describe('KubeEventRecorder against the real apiserver', () => {
  it('aggregates repeats into one Event with a growing count, shown by kubectl describe', async () => {
    const obj = await createResource(client, ns.name, 'events');
    const ref = refOf(obj);
    const recorder = new KubeEventRecorder({ sink: createEventSink(kc), node: 'node-a' });
    recorder.record(ref, 'Normal', 'RestoresStarted', 'restoring 10 replicas (batch 1)');
    for (let i = 0; i < 3; i++) recorder.record(ref, 'Warning', 'RestoreFailed', 'replica r1 attempt 1: RestoreRace');
    await recorder.flush();
    expect(recorder.stats()).toMatchObject({ created: 2, updated: 2, failed: 0, dropped: 0 });

    const events = await eventsOf(obj);
    expect(events).toHaveLength(2);
    const failed = events.find((e) => e.reason === 'RestoreFailed');
    expect(failed).toMatchObject({
      type: 'Warning',
      count: 3,
      message: 'replica r1 attempt 1: RestoreRace',
      involvedObject: { kind: 'CheckpointReplicaSet', name: 'events', uid: obj.metadata.uid, apiVersion: 'checkpoint.dev/v1alpha1' },
      source: { component: 'crs-controller', host: 'node-a' },
      reportingComponent: 'crs-controller',
      reportingInstance: 'node-a',
    });

    const described = await k('describe', 'crs', 'events', '-n', ns.name);
    const eventsSection = described.slice(described.indexOf('Events:'));
    expect(eventsSection).toMatch(/Warning\s+RestoreFailed\s+.*\(x3 over .*\)\s+crs-controller\s+replica r1 attempt 1: RestoreRace/);
    expect(eventsSection).toMatch(/Normal\s+RestoresStarted\s+.*crs-controller\s+restoring 10 replicas \(batch 1\)/);
  });

  it('caps a failure storm per resource: 200 failures with distinct messages make at most burst writes', async () => {
    const obj = await createResource(client, ns.name, 'storm');
    const ref = refOf(obj);
    const recorder = new KubeEventRecorder({ sink: createEventSink(kc), node: 'node-a', burst: 25 });
    for (let i = 0; i < 200; i++) recorder.record(ref, 'Warning', 'RestoreFailed', `replica r${i}: RestoreRace`);
    await recorder.flush();
    const s = recorder.stats();
    expect(s.created + s.updated).toBe(25);
    expect(s.dropped).toBe(175);
    const events = await eventsOf(obj);
    // 10 distinct messages, then ONE combined Event counting the rest that got through.
    expect(events).toHaveLength(11);
    const combined = events.find((e) => e.message?.startsWith('(combined from similar events): '));
    expect(combined?.count).toBe(15);
  });
});

describe('NodeFinalizer against the real apiserver', () => {
  it('ensure/release from two nodes at once leave each other and a foreign finalizer untouched', async () => {
    const obj = await createResource(client, ns.name, 'fin', { finalizers: ['example.com/keep'] });
    const ref = refOf(obj);
    const nodes = ['node-a', 'node-b', 'node-c'].map((node) => new NodeFinalizer({ client, node }));
    await Promise.all(nodes.map((f) => f.ensure(ref)));
    let stored = await client.get(ns.name, 'fin');
    expect([...(stored.metadata.finalizers ?? [])].sort()).toEqual([
      'checkpoint.dev/cleanup-node-a',
      'checkpoint.dev/cleanup-node-b',
      'checkpoint.dev/cleanup-node-c',
      'example.com/keep',
    ]);

    // Deletion requested: the object stays while finalizers remain; no new finalizer may be added.
    await k('delete', 'crs', 'fin', '-n', ns.name, '--wait=false');
    const lateNode = new NodeFinalizer({ client, node: 'node-d' });
    const err = await lateNode.ensure(ref).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FinalizerError);
    expect(err).toMatchObject({ code: 'ResourceDeleting' });

    // The node whose finalizer is LAST in the list reads first; another node releases before it
    // patches. Its patch is then stale and the index it read points past the end of the shortened
    // list: it must get the apiserver's 409 (not a 422 from a patch that no longer applies to the
    // current object), re-read, and succeed.
    stored = await client.get(ns.name, 'fin');
    const lastFinalizer = stored.metadata.finalizers?.at(-1) ?? '';
    const late = lastFinalizer.replace('checkpoint.dev/cleanup-', '');
    const [early, third] = ['node-a', 'node-b', 'node-c'].filter((n) => n !== late) as [string, string];
    expect(['node-a', 'node-b', 'node-c']).toContain(late);
    let raced = false;
    const racing: CrsClient = {
      ...client,
      get: async (namespace, name) => {
        const read = await client.get(namespace, name);
        if (!raced) {
          raced = true;
          await new NodeFinalizer({ client, node: early }).release(ref);
        }
        return read;
      },
    };
    const lateFinalizer = new NodeFinalizer({ client: racing, node: late });
    await lateFinalizer.release(ref);
    expect(lateFinalizer.conflicts).toBe(1);
    stored = await client.get(ns.name, 'fin');
    expect(stored.metadata.deletionTimestamp).toBeDefined();
    expect([...(stored.metadata.finalizers ?? [])].sort()).toEqual([`checkpoint.dev/cleanup-${third}`, 'example.com/keep']);

    const thirdFinalizer = new NodeFinalizer({ client, node: third });
    await thirdFinalizer.release(ref);
    stored = await client.get(ns.name, 'fin');
    expect(stored.metadata.finalizers).toEqual(['example.com/keep']);

    // The foreign finalizer's owner lets go: the object is gone, and a late release is a no-op.
    await k('patch', 'crs', 'fin', '-n', ns.name, '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers/0"}]');
    await expect(client.get(ns.name, 'fin')).rejects.toMatchObject({ code: 'NotFound', status: 404 });
    await expect(thirdFinalizer.release(ref)).resolves.toBeUndefined();
  });
});
