// Live progress of one CheckpointReplicaSet for a person at a terminal: a bar with ready / desired,
// restores in flight, failures and rate, then a summary once Ready=True (or on timeout).
//   tsx hack/demo/progress.ts --namespace demo --name app --metrics http://127.0.0.1:9464 [--timeout 900]
import * as k8s from '@kubernetes/client-node';
import { parseArgs } from 'node:util';
import type { CheckpointReplicaSet } from '../../controller/api/types.js';
import { GROUP, PLURAL, VERSION } from '../../controller/api/types.js';

const { values } = parseArgs({
  options: {
    namespace: { type: 'string', default: 'demo' },
    name: { type: 'string', default: 'app' },
    metrics: { type: 'string', default: 'http://127.0.0.1:9464' },
    timeout: { type: 'string', default: '900' },
  },
});
const namespace = values.namespace;
const name = values.name;
const timeoutMs = Number(values.timeout) * 1000;

const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const api = kc.makeApiClient(k8s.CustomObjectsApi);

interface Counters {
  inFlight: number;
  succeeded: number;
  failed: number;
  failedByReason: Map<string, number>;
}

async function scrape(): Promise<Counters | undefined> {
  const text = await fetch(`${values.metrics}/metrics`).then(
    (r) => r.text(),
    () => undefined,
  );
  if (!text) return undefined;
  const counters: Counters = { inFlight: 0, succeeded: 0, failed: 0, failedByReason: new Map() };
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const [, metric, labels = '', raw] = m;
    const value = Number(raw);
    if (metric === 'crs_restores_in_flight') counters.inFlight += value;
    if (metric === 'crs_restores_total' && labels.includes(`name="${name}"`) && labels.includes(`namespace="${namespace}"`)) {
      if (labels.includes('result="success"')) counters.succeeded += value;
      else {
        counters.failed += value;
        const reason = /reason="([^"]*)"/.exec(labels)?.[1] ?? 'Unknown';
        counters.failedByReason.set(reason, (counters.failedByReason.get(reason) ?? 0) + value);
      }
    }
  }
  return counters;
}

async function read(): Promise<CheckpointReplicaSet | undefined> {
  try {
    return (await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })) as CheckpointReplicaSet;
  } catch {
    return undefined;
  }
}

function bar(done: number, total: number, width = 30): string {
  const filled = total > 0 ? Math.round((done / total) * width) : width;
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

const watchStarted = Date.now();
const tty = process.stdout.isTTY;
let lastState = '';
for (;;) {
  const [crs, counters] = await Promise.all([read(), scrape()]);
  // Time counts from the resource's creation, not from when this watcher came up.
  const created = Date.parse(crs?.metadata.creationTimestamp ?? '');
  const started = Number.isFinite(created) ? Math.min(created, watchStarted) : watchStarted;
  const desired = crs?.spec.replicas ?? 0;
  const ready = crs?.status?.readyReplicas ?? 0;
  const readyCondition = crs?.status?.conditions?.find((c) => c.type === 'Ready');
  const elapsed = (Date.now() - started) / 1000;
  const rate = elapsed > 0 ? ready / elapsed : 0;
  const line =
    `${bar(ready, desired)} ${String(ready).padStart(3)}/${desired} ready | ` +
    `${counters?.inFlight ?? '?'} in flight | ${counters?.failed ?? '?'} failed restores | ` +
    `${rate.toFixed(2)}/s | ${elapsed.toFixed(0)} s`;
  // Without a terminal (CI, a log file) print a line only when the counts change.
  const state = `${ready}/${desired} ${counters?.inFlight} ${counters?.failed}`;
  if (tty) process.stdout.write(`\r${line}  `);
  else if (state !== lastState) console.log(line);
  lastState = state;

  const isReady = readyCondition?.status === 'True' && readyCondition.observedGeneration === crs?.metadata.generation && ready === desired;
  if (isReady || Date.now() - watchStarted > timeoutMs) {
    if (tty) process.stdout.write('\n');
    const reasons = [...(counters?.failedByReason ?? new Map<string, number>())].map(([r, n]) => `${r} ${n}`).join(', ');
    console.log('');
    console.log(
      isReady
        ? `Ready: ${desired} replicas in ${elapsed.toFixed(1)} s`
        : `NOT Ready after ${elapsed.toFixed(0)} s: ${readyCondition?.reason ?? 'no status'} ${readyCondition?.message ?? ''}`,
    );
    console.log(`  restores: ${counters?.succeeded ?? '?'} succeeded, ${counters?.failed ?? '?'} failed${reasons ? ` (${reasons})` : ''}`);
    console.log(`  retries:  ${Math.max(0, (counters?.succeeded ?? 0) + (counters?.failed ?? 0) - ready)} (restore attempts beyond one per ready replica)`);
    process.exit(isReady ? 0 : 1);
  }
  await new Promise((r) => setTimeout(r, 500));
}
