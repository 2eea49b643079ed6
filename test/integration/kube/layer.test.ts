// The assembled kube layer against the real apiserver: resource changes and the agent's Node label
// changes reach the handler as queue keys, the ports write status/events/finalizers, stop() is clean.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../../controller/api/types.js';
import { createKubeLayer } from '../../../controller/kube/index.js';
import type { ResourceRef } from '../../../controller/vocabulary.js';
import { createResource, eventually, installCrd, k, kubeConfig, testNamespace } from './helpers.js';

let ns: Awaited<ReturnType<typeof testNamespace>>;

beforeAll(async () => {
  await installCrd();
  ns = await testNamespace('kube-layer');
});
afterAll(async () => {
  await ns?.remove();
});

describe('createKubeLayer', () => {
  it('feeds resource and node changes to the handler and serves the reconciler ports', async () => {
    const nodeName = `kube-layer-node-${Date.now().toString(36)}`;
    await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName, labels: { pool: 'a' } } }));
    const layer = createKubeLayer(kubeConfig(), { node: nodeName, namespace: ns.name, statusDebounceMs: 50 });
    const handled: string[] = [];
    const refs = new Map<string, ResourceRef>();
    try {
      const obj = await createResource(layer.client, ns.name, 'one');
      await layer.start(async (key) => {
        handled.push(key);
        const name = key.split('/')[1] ?? '';
        const current = layer.resources.get(name, ns.name);
        if (!current) return;
        const ref = { namespace: ns.name, name, uid: current.metadata.uid, generation: current.metadata.generation ?? 1 };
        refs.set(key, ref);
        await layer.finalizer.ensure(ref);
        const entry: NodeStatus = { node: nodeName, replicas: 0, readyReplicas: 0, restoringReplicas: 0, failedReplicas: 0 };
        await layer.status.report(ref, entry);
        layer.events.record(ref, 'Normal', 'RestoresStarted', 'seen by the layer test');
      });
      expect(layer.hasSynced()).toBe(true);
      const key = `${ns.name}/one`;
      await eventually('the first reconcile', () => (handled.includes(key) ? true : undefined));
      await eventually('status and finalizer written', async () => {
        const o = await layer.client.get(ns.name, 'one');
        return o.status?.nodes?.[0]?.node === nodeName && o.metadata.finalizers?.includes(`checkpoint.dev/cleanup-${nodeName}`) ? true : undefined;
      });

      const before = handled.length;
      await k('label', 'node', nodeName, 'pool=b', '--overwrite');
      await eventually('a reconcile after the node label change', () => (handled.length > before ? true : undefined));

      await layer.finalizer.release(refs.get(key) ?? { namespace: ns.name, name: 'one', uid: obj.metadata.uid, generation: 1 });
      await layer.events.flush();
      const events = await k.json<{ items: unknown[] }>('get', 'events', '-n', ns.name, '--field-selector', `involvedObject.uid=${obj.metadata.uid}`);
      expect(events.items.length).toBeGreaterThanOrEqual(1);
    } finally {
      await layer.stop();
      await k('delete', 'node', nodeName, '--wait=false').catch(() => undefined);
    }
    expect(layer.queue.isShuttingDown).toBe(true);
    expect(layer.queue.inFlight).toBe(0);
  });
});
