// Status at many nodes, measured: N simulated agents (no Docker), each with the real StatusWriter
// (controller/kube/status-writer.ts, default debounce and conflict backoff), all reporting progress
// on ONE resource every second against the real apiserver of the test bed. A benchmark, not a test.
//   npm run bench:status -- [--nodes 100] [--seconds 120] [--per-node-ms 50]
// --per-node-ms sets the writers' perNodeIntervalMs (default: the writer's own); 0 turns the pacing
// by node count off (one round per second per node at any count), for a before/after comparison.
// Prints writes/s, conflicts, apiserver latency (GET, PUT and apply of /status as the writer sees them), and
// the delay from the last report until the stored summary is right. Run after hack/testbed-up.sh.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import type { CheckpointReplicaSet, NodeStatus } from '../../controller/api/types.js';
import { createCrsClient, type CrsClient } from '../../controller/kube/client.js';
import { StatusWriter } from '../../controller/kube/status-writer.js';
import { parseEnvFile } from '../../test/integration/support/testbed-env.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '120' },
    replicas: { type: 'string', default: '45' },
    'per-node-ms': { type: 'string' },
  },
});
const perNodeIntervalMs = values['per-node-ms'] === undefined ? undefined : Number(values['per-node-ms']);
const nodes = Number(values.nodes);
const seconds = Number(values.seconds);
const desired = Number(values.replicas);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const env = parseEnvFile(path.join(repoRoot, '.local/testbed.env'));
const kubectl = (...args: string[]) => execFileSync(env.KUBECTL ?? 'kubectl', args, { env: { ...process.env, KUBECONFIG: env.KUBECONFIG }, encoding: 'utf8' });

const namespace = `bench-status-${Date.now().toString(36)}`;
kubectl('apply', '-f', path.join(repoRoot, 'crds/checkpoint.dev_checkpointreplicasets.yaml'));
kubectl('create', 'namespace', namespace);
const manifest = {
  apiVersion: 'checkpoint.dev/v1alpha1',
  kind: 'CheckpointReplicaSet',
  metadata: { name: 'many', namespace },
  spec: { replicas: desired, checkpoint: { container: 'app-template', name: 'warm' }, template: { image: env.SAMPLE_IMAGE } },
};
execFileSync(env.KUBECTL ?? 'kubectl', ['apply', '-f', '-'], { input: JSON.stringify(manifest), env: { ...process.env, KUBECONFIG: env.KUBECONFIG } });

const kc = new KubeConfig();
kc.loadFromFile(env.KUBECONFIG ?? '');
const real = createCrsClient(kc);
const latency = { get: [] as number[], put: [] as number[], apply: [] as number[] };
async function timed<T>(into: number[], call: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await call();
  } finally {
    into.push(performance.now() - start);
  }
}
// The writers' own client, timed: what the apiserver's latency looks like from an agent.
const client: Pick<CrsClient, 'get' | 'replaceStatus' | 'applyStatus'> = {
  get: (ns, name) => timed(latency.get, () => real.get(ns, name)),
  replaceStatus: (obj) => timed(latency.put, () => real.replaceStatus(obj)),
  applyStatus: (apply) => timed(latency.apply, () => real.applyStatus(apply)),
};
const obj = await real.get(namespace, 'many');
const ref = { namespace, name: 'many', uid: obj.metadata.uid ?? '', generation: obj.metadata.generation ?? 1 };
const names = Array.from({ length: nodes }, (_, i) => `sim-${String(i).padStart(3, '0')}`);
const writers = names.map((node) => new StatusWriter({ client, node, ...(perNodeIntervalMs === undefined ? {} : { perNodeIntervalMs }) }));

function entry(node: string, ready: number): NodeStatus {
  const done = ready === desired;
  const t = '1970-01-01T00:00:00Z';
  return {
    node,
    observedGeneration: ref.generation,
    replicas: desired,
    readyReplicas: ready,
    restoringReplicas: desired - ready,
    failedReplicas: 0,
    conditions: [
      {
        type: 'Ready',
        status: done ? 'True' : 'False',
        reason: done ? 'AllReplicasReady' : 'ReplicasNotReady',
        message: `${ready}/${desired} ready`,
        lastTransitionTime: t,
        observedGeneration: ref.generation,
      },
      { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'ok', lastTransitionTime: t, observedGeneration: ref.generation },
    ],
  };
}

// Every node reports a new figure every second, each on its own phase within the second.
const started = performance.now();
const errors: unknown[] = [];
await Promise.all(
  writers.map(async (w, i) => {
    await new Promise((r) => setTimeout(r, (i * 1000) / nodes));
    for (let tick = 0; performance.now() - started < seconds * 1000; tick++) {
      w.report(ref, entry(w.node, tick % desired)).catch((err: unknown) => errors.push(err));
      await new Promise((r) => setTimeout(r, 1000));
    }
  }),
);
// The last change: every node is done. Then: how long until the stored summary says so?
const lastChange = performance.now();
for (const w of writers) w.report(ref, entry(w.node, desired)).catch((err: unknown) => errors.push(err));
let delayMs = NaN;
let stored: CheckpointReplicaSet | undefined;
for (;;) {
  stored = await real.get(namespace, 'many');
  const entries = stored.status?.nodes ?? [];
  const right =
    entries.length === nodes &&
    entries.every((e) => e.readyReplicas === desired) &&
    stored.status?.readyReplicas === nodes * desired &&
    stored.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  if (right) {
    delayMs = performance.now() - lastChange;
    break;
  }
  if (performance.now() - lastChange > 120_000) break;
  await new Promise((r) => setTimeout(r, 100));
}
const wall = (lastChange - started) / 1000;
const totals = writers
  .map((w) => w.stats())
  .reduce((a, s) => ({
    writes: a.writes + s.writes,
    summaryWrites: a.summaryWrites + s.summaryWrites,
    conflicts: a.conflicts + s.conflicts,
    failures: a.failures + s.failures,
    unchanged: a.unchanged + s.unchanged,
    dropped: a.dropped + s.dropped,
  }));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]?.toFixed(0) ?? '';
const maxWriterConflicts = Math.max(...writers.map((w) => w.stats().conflicts));
console.log(
  JSON.stringify(
    {
      nodes,
      perNodeIntervalMs: perNodeIntervalMs ?? 'default',
      seconds: Number(wall.toFixed(1)),
      reportsPerNodePerSecond: 1,
      writes: totals.writes,
      entryWrites: totals.writes - totals.summaryWrites,
      summaryWrites: totals.summaryWrites,
      writesPerSecond: Number((totals.writes / wall).toFixed(1)),
      writesPerNodePerSecond: Number((totals.writes / wall / nodes).toFixed(2)),
      conflicts: totals.conflicts,
      conflictsPerWrite: Number((totals.conflicts / Math.max(1, totals.writes)).toFixed(2)),
      maxConflictsOneWriter: maxWriterConflicts,
      failures: totals.failures,
      dropped: totals.dropped,
      reportErrors: errors.length,
      getMs: { p50: pct(latency.get, 50), p99: pct(latency.get, 99), n: latency.get.length },
      putMs: { p50: pct(latency.put, 50), p99: pct(latency.put, 99), n: latency.put.length },
      applyMs: { p50: pct(latency.apply, 50), p99: pct(latency.apply, 99), n: latency.apply.length },
      summaryRightAfterMs: Number.isNaN(delayMs) ? 'not within 120 s' : Math.round(delayMs),
      entriesStored: stored?.status?.nodes?.length ?? 0,
    },
    null,
    1,
  ),
);
await Promise.all(writers.map((w) => w.stop()));
kubectl('delete', 'namespace', namespace, '--wait=false');
process.exit(0);
