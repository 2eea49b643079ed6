// Live progress of one CheckpointReplicaSet for a person at a terminal: a bar with ready / desired,
// restores in flight, failures and rate, then a summary once Ready=True (or on timeout). With several
// nodes (--nodes N, one agent each, --metrics node=url,...) a line per node follows the total, from
// that node's status.nodes entry and its own agent's metrics.
//   tsx hack/demo/progress.ts --namespace demo --name app --metrics http://127.0.0.1:9464 [--nodes 1] [--timeout 900]
import * as k8s from '@kubernetes/client-node';
import { parseArgs } from 'node:util';
import type { CheckpointReplicaSet, NodeStatus } from '../../controller/api/types.js';
import { GROUP, PLURAL, VERSION } from '../../controller/api/types.js';

const { values } = parseArgs({
  options: {
    namespace: { type: 'string', default: 'demo' },
    name: { type: 'string', default: 'app' },
    metrics: { type: 'string', default: 'http://127.0.0.1:9464' },
    nodes: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '900' },
  },
});
const namespace = values.namespace;
const name = values.name;
const timeoutMs = Number(values.timeout) * 1000;
const nodeCount = Number(values.nodes);
if (!Number.isInteger(nodeCount) || nodeCount < 1) throw new Error(`--nodes: a whole number >= 1, got ${values.nodes}`);
/** Each agent's metrics endpoint, by node name ('' when only a URL is given). */
const endpoints = values.metrics.split(',').map((item) => {
  const at = item.indexOf('=');
  return at < 0 ? { node: '', url: item } : { node: item.slice(0, at), url: item.slice(at + 1) };
});

const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const api = kc.makeApiClient(k8s.CustomObjectsApi);

interface Counters {
  inFlight: number;
  succeeded: number;
  failed: number;
  failedByReason: Map<string, number>;
}

async function scrape(url: string): Promise<Counters | undefined> {
  const text = await fetch(`${url}/metrics`).then(
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

/** The counters of every agent, per node, and their sum (undefined while no agent answers). */
async function scrapeAll(): Promise<{ total?: Counters; byNode: Map<string, Counters> }> {
  const results = await Promise.all(endpoints.map(async (e) => ({ node: e.node, counters: await scrape(e.url) })));
  const byNode = new Map<string, Counters>();
  let total: Counters | undefined;
  for (const { node, counters } of results) {
    if (!counters) continue;
    byNode.set(node, counters);
    total ??= { inFlight: 0, succeeded: 0, failed: 0, failedByReason: new Map() };
    total.inFlight += counters.inFlight;
    total.succeeded += counters.succeeded;
    total.failed += counters.failed;
    for (const [reason, n] of counters.failedByReason) total.failedByReason.set(reason, (total.failedByReason.get(reason) ?? 0) + n);
  }
  return { total, byNode };
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

/** One node's line: its entry's counts against the per-node desired count, and its own agent's restores in flight. */
function nodeLine(entry: NodeStatus | undefined, node: string, desired: number, counters: Counters | undefined): string {
  const ready = entry?.readyReplicas ?? 0;
  const degraded = entry?.conditions?.find((c) => c.type === 'Degraded' && c.status === 'True');
  return (
    `  ${node.padEnd(24)} ${bar(ready, desired, 20)} ${String(ready).padStart(3)}/${desired} ready | ` +
    `${entry?.restoringReplicas ?? 0} restoring | ${counters?.inFlight ?? '?'} in flight | ${entry?.failedReplicas ?? 0} failed` +
    (degraded ? ` | Degraded: ${degraded.reason}` : '') +
    (entry ? '' : ' | not reported yet')
  );
}

/** The lines per node, in the order of --metrics (nodes that report without an agent listed here follow). */
function nodeLines(crs: CheckpointReplicaSet | undefined, byNode: Map<string, Counters>): string[] {
  const names = endpoints.map((e) => e.node).filter((n) => n !== '');
  for (const e of crs?.status?.nodes ?? []) if (!names.includes(e.node)) names.push(e.node);
  const desired = crs?.spec.replicas ?? 0;
  return names.map((node) =>
    nodeLine(
      crs?.status?.nodes?.find((e) => e.node === node),
      node,
      desired,
      byNode.get(node),
    ),
  );
}

const watchStarted = Date.now();
const tty = process.stdout.isTTY;
let lastState = '';
let drawn = 0;
for (;;) {
  const [crs, { total: counters, byNode }] = await Promise.all([read(), scrapeAll()]);
  // Time counts from the resource's creation, not from when this watcher came up.
  const created = Date.parse(crs?.metadata.creationTimestamp ?? '');
  const started = Number.isFinite(created) ? Math.min(created, watchStarted) : watchStarted;
  // spec.replicas is per node: the whole desires that many on each of the nodes.
  const desired = (crs?.spec.replicas ?? 0) * nodeCount;
  const ready = crs?.status?.readyReplicas ?? 0;
  const readyCondition = crs?.status?.conditions?.find((c) => c.type === 'Ready');
  const elapsed = (Date.now() - started) / 1000;
  const rate = elapsed > 0 ? ready / elapsed : 0;
  const line =
    `${bar(ready, desired)} ${String(ready).padStart(3)}/${desired} ready | ` +
    `${counters?.inFlight ?? '?'} in flight | ${counters?.failed ?? '?'} failed restores | ` +
    `${rate.toFixed(2)}/s | ${elapsed.toFixed(0)} s`;
  const lines = [line, ...(nodeCount > 1 ? nodeLines(crs, byNode) : [])];
  // Without a terminal (CI, a log file) print the lines only when the counts change.
  const state = lines.map((l) => l.replace(/[\d.]+\/s \| \d+ s$/, '')).join('\n');
  if (tty) {
    // Redraw in place: back over the lines drawn last time.
    process.stdout.write(`${drawn > 1 ? `\x1b[${drawn - 1}A` : ''}\r${lines.map((l) => `${l}\x1b[K`).join('\n')}`);
    drawn = lines.length;
  } else if (state !== lastState) console.log(lines.join('\n'));
  lastState = state;

  const allNodes = (crs?.status?.nodeCount ?? 0) >= nodeCount;
  const isReady = readyCondition?.status === 'True' && readyCondition.observedGeneration === crs?.metadata.generation && ready === desired && allNodes;
  if (isReady || Date.now() - watchStarted > timeoutMs) {
    if (tty) process.stdout.write('\n');
    const reasons = [...(counters?.failedByReason ?? new Map<string, number>())].map(([r, n]) => `${r} ${n}`).join(', ');
    console.log('');
    console.log(
      isReady
        ? `Ready: ${desired} replicas${nodeCount > 1 ? ` on ${nodeCount} nodes` : ''} in ${elapsed.toFixed(1)} s`
        : `NOT Ready after ${elapsed.toFixed(0)} s: ${readyCondition?.reason ?? 'no status'} ${readyCondition?.message ?? ''}`,
    );
    console.log(`  restores: ${counters?.succeeded ?? '?'} succeeded, ${counters?.failed ?? '?'} failed${reasons ? ` (${reasons})` : ''}`);
    console.log(`  retries:  ${Math.max(0, (counters?.succeeded ?? 0) + (counters?.failed ?? 0) - ready)} (restore attempts beyond one per ready replica)`);
    process.exit(isReady ? 0 : 1);
  }
  await new Promise((r) => setTimeout(r, 500));
}
