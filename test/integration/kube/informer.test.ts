// The resilient informer against the real apiserver: it sees adds, updates and deletes, re-emits
// its cache at each resync, and after an outage (every connection reset, new ones refused, through a
// TCP relay) it keeps retrying with backoff and, once the apiserver is reachable again, catches up
// on what changed meanwhile. The Node informer sees only the agent's own Node and its labels.
import type { V1Node } from '@kubernetes/client-node';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { createCrsClient } from '../../../controller/kube/client.js';
import { Watch } from '@kubernetes/client-node';
import { createCrsInformer, createNodeInformer, type UpdateCause, type WatchLike } from '../../../controller/kube/informer.js';
import { createResource, eventually, installCrd, k, kubeConfig, testNamespace } from './helpers.js';
import { TcpProxy } from './tcp-proxy.js';

const kc = kubeConfig();
const client = createCrsClient(kc);
let ns: Awaited<ReturnType<typeof testNamespace>>;

beforeAll(async () => {
  await installCrd();
  ns = await testNamespace('kube-informer');
});
afterAll(async () => {
  await ns?.remove();
});

/** The same credentials, but the apiserver reached through `port` on 127.0.0.1. */
function kubeConfigVia(port: number): KubeConfig {
  const direct = kubeConfig();
  const via = new KubeConfig();
  via.loadFromOptions({
    clusters: direct.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${port}` })),
    users: direct.users,
    contexts: direct.contexts,
    currentContext: direct.currentContext,
  });
  return via;
}

interface Seen {
  kind: 'add' | 'update' | 'delete';
  cause?: UpdateCause;
  name: string;
  replicas?: number;
}

describe('ResilientInformer against the real apiserver', () => {
  it('sees add/update/delete, resyncs, and recovers from an outage without missing changes', async () => {
    const server = new URL(kc.getCurrentCluster()?.server ?? '');
    const proxy = new TcpProxy(server.hostname, Number(server.port));
    const port = await proxy.listen();
    await createResource(client, ns.name, 'pre');

    const informer = createCrsInformer(kubeConfigVia(port), {
      namespace: ns.name,
      resyncPeriodMs: 1500,
      restartBackoff: { initialMs: 200, maxMs: 1000, jitter: 0.2 },
    });
    const seen: Seen[] = [];
    const record = (kind: Seen['kind']) => (o: CheckpointReplicaSet, cause?: UpdateCause) =>
      seen.push({ kind, name: o.metadata.name, replicas: o.spec?.replicas, ...(cause ? { cause } : {}) });
    informer.on({ add: record('add'), update: record('update'), delete: record('delete') });
    const has = (p: (s: Seen) => boolean) => (seen.some(p) ? true : undefined);

    try {
      expect(informer.hasSynced()).toBe(false);
      informer.start();
      await informer.waitForSync();
      expect(informer.hasSynced()).toBe(true);
      expect(seen).toEqual([{ kind: 'add', name: 'pre', replicas: 3 }]);

      await createResource(client, ns.name, 'live');
      await eventually('add of live', () => has((s) => s.kind === 'add' && s.name === 'live'));
      await k('scale', 'crs/live', '-n', ns.name, '--replicas=5');
      await eventually('update of live to 5', () => has((s) => s.kind === 'update' && s.cause === 'watch' && s.name === 'live' && s.replicas === 5));
      expect(informer.get('live', ns.name)?.spec.replicas).toBe(5);
      await k('delete', 'crs/live', '-n', ns.name);
      await eventually('delete of live', () => has((s) => s.kind === 'delete' && s.name === 'live'));
      expect(informer.get('live', ns.name)).toBeUndefined();

      await eventually('a resync re-emitting pre', () => has((s) => s.kind === 'update' && s.cause === 'resync' && s.name === 'pre'));
      expect(informer.stats().resyncs).toBeGreaterThanOrEqual(1);

      // Outage: the watch connection is reset and reconnects are refused.
      const errorsBefore = informer.stats().errors;
      await proxy.down();
      await createResource(client, ns.name, 'during');
      await k('delete', 'crs/pre', '-n', ns.name);
      // client-node's own informer would have stopped at the first error; ours keeps trying.
      await eventually('two failed attempts during the outage', () => (informer.stats().errors >= errorsBefore + 2 ? true : undefined));
      expect(seen.some((s) => s.name === 'during')).toBe(false);

      await proxy.listen();
      await eventually('add of during after the outage', () => has((s) => s.kind === 'add' && s.name === 'during'), 30_000);
      await eventually('delete of pre after the outage', () => has((s) => s.kind === 'delete' && s.name === 'pre'), 30_000);
      expect(informer.list(ns.name).map((o) => o.metadata.name)).toEqual(['during']);

      console.info('informer stats after outage', JSON.stringify(informer.stats()));
    } finally {
      await informer.stop();
      await proxy.down();
    }
  });
});

describe('ResilientInformer and the apiserver ending watches', () => {
  it('re-lists when the apiserver answers 410 Gone to a resourceVersion that has expired', async () => {
    const real = new Watch(kc);
    const gone: unknown[] = [];
    let calls = 0;
    // The first watch resumes from resourceVersion 1, long expired (as after a long disconnection):
    // the real apiserver answers "too old resource version" with code 410.
    const expiring: WatchLike = {
      watch: (path, params, callback, done) => {
        calls++;
        const p = calls === 1 ? { ...params, resourceVersion: '1' } : params;
        return real.watch(
          path,
          p,
          (phase, obj, raw) => {
            if (phase === 'ERROR') gone.push(obj);
            callback(phase, obj, raw);
          },
          done,
        );
      },
    };
    await createResource(client, ns.name, 'gone-before');
    const informer = createCrsInformer(kc, { namespace: ns.name, resyncPeriodMs: 0, watch: expiring });
    const added: string[] = [];
    informer.on({ add: (o) => added.push(o.metadata.name) });
    try {
      informer.start();
      await informer.waitForSync();
      await eventually('the re-list after 410', () => (informer.stats().lists >= 2 ? true : undefined));
      expect(gone).toEqual([expect.objectContaining({ code: 410, reason: 'Expired' })]);
      expect(informer.stats().errors).toBe(0);
      await createResource(client, ns.name, 'gone-after');
      await eventually('an add after the re-list', () => (added.includes('gone-after') ? true : undefined));
      // The re-list found the same object again: no duplicate add.
      expect(added.filter((n) => n === 'gone-before')).toHaveLength(1);
    } finally {
      await informer.stop();
    }
  });

  it('resumes at once when the apiserver ends a watch at its timeout, without errors or missed events', async () => {
    const informer = createCrsInformer(kc, { namespace: ns.name, resyncPeriodMs: 0, watchTimeoutSeconds: 1 });
    const added: string[] = [];
    informer.on({ add: (o) => added.push(o.metadata.name) });
    try {
      informer.start();
      await informer.waitForSync();
      await eventually('three watches', () => (informer.stats().watches >= 3 ? true : undefined));
      await createResource(client, ns.name, 'after-timeouts');
      await eventually('the add after several watch timeouts', () => (added.includes('after-timeouts') ? true : undefined));
      expect(informer.stats()).toMatchObject({ errors: 0, lists: 1 });
    } finally {
      await informer.stop();
    }
  });
});

describe('Node informer against the real apiserver', () => {
  it('sees only its own Node, and its label changes', async () => {
    const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
    const mine = `kube-it-node-${suffix}`;
    const other = `kube-it-other-${suffix}`;
    for (const name of [mine, other]) {
      await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { pool: 'blue' } } }));
    }
    const informer = createNodeInformer(kc, mine, { resyncPeriodMs: 0 });
    const labels: Array<Record<string, string> | undefined> = [];
    const names = new Set<string>();
    informer.on({
      add: (n: V1Node) => {
        names.add(n.metadata?.name ?? '');
        labels.push(n.metadata?.labels);
      },
      update: (n: V1Node) => {
        names.add(n.metadata?.name ?? '');
        labels.push(n.metadata?.labels);
      },
    });
    try {
      informer.start();
      await informer.waitForSync();
      expect(informer.list().map((n) => n.metadata?.name)).toEqual([mine]);
      await k('label', 'node', mine, 'pool=green', '--overwrite');
      await k('label', 'node', other, 'pool=red', '--overwrite');
      await eventually('the label change', () => (labels.some((l) => l?.pool === 'green') ? true : undefined));
      expect(informer.get(mine)?.metadata?.labels?.pool).toBe('green');
      expect([...names]).toEqual([mine]);
    } finally {
      await informer.stop();
      await k('delete', 'node', mine, other, '--wait=false').catch(() => undefined);
    }
  });
});
