// Pure status arithmetic for the status writer: merge ONE node's entry into status.nodes (other
// nodes' entries are kept exactly as they are), recompute the sums and the top-level conditions
// from all entries. No I/O, no clock: `now` is a parameter.

import { OWNER_UID } from '../api/labels.js';
import { kubeTime, removeCondition, setCondition } from '../api/conditions.js';
import type { CheckpointReplicaSetStatus, Condition, ConditionType, NodeStatus } from '../api/types.js';
import { canonicalJson } from '../vocabulary.js';

export interface ObjectIdentity {
  uid: string;
  /** metadata.generation of the object the status is computed for. */
  generation: number;
}

/** status.selector: the label every replica container of this resource carries. */
export function selectorFor(uid: string): string {
  return `${OWNER_UID}=${uid}`;
}

/**
 * The status after `entry` replaced this node's entry (or was appended). `entry.lastUpdateTime`
 * and the conditions' lastTransitionTime are managed here: kept when nothing changed, so
 * re-reporting the same state yields a status deep-equal to the current one (no write needed).
 */
export function mergeNodeStatus(
  current: CheckpointReplicaSetStatus | undefined,
  entry: NodeStatus,
  object: ObjectIdentity,
  now: Date,
): CheckpointReplicaSetStatus {
  const nodes = current?.nodes ?? [];
  const index = nodes.findIndex((n) => n.node === entry.node);
  const merged = normaliseEntry(index === -1 ? undefined : nodes[index], entry, now);
  const nextNodes = index === -1 ? [...nodes, merged] : nodes.map((n, i) => (i === index ? merged : n));
  return aggregate(current, nextNodes, object, now);
}

/** The status without `node`'s entry (e.g. the node no longer matches spec.nodeSelector). */
export function removeNodeStatus(current: CheckpointReplicaSetStatus | undefined, node: string, object: ObjectIdentity, now: Date): CheckpointReplicaSetStatus {
  const nodes = (current?.nodes ?? []).filter((n) => n.node !== node);
  return aggregate(current, nodes, object, now);
}

/** The summary fields of `status` (everything but the per-node entries): what one shared manager owns. */
export function summaryFields(status: CheckpointReplicaSetStatus): Omit<CheckpointReplicaSetStatus, 'nodes'> {
  const { nodes: _entries, ...summary } = status;
  return summary;
}

/** Sums, observedGeneration, selector and conditions over `nodes`; keeps fields it does not own. */
export function aggregate(current: CheckpointReplicaSetStatus | undefined, nodes: NodeStatus[], object: ObjectIdentity, now: Date): CheckpointReplicaSetStatus {
  const sum = (pick: (n: NodeStatus) => number | undefined) => nodes.reduce((acc, n) => acc + (pick(n) ?? 0), 0);
  const status: CheckpointReplicaSetStatus = {
    ...current,
    replicas: sum((n) => n.replicas),
    readyReplicas: sum((n) => n.readyReplicas),
    restoringReplicas: sum((n) => n.restoringReplicas),
    failedReplicas: sum((n) => n.failedReplicas),
    conditions: aggregateConditions(current?.conditions, nodes, object.generation, now),
    nodes,
    nodeCount: nodes.length,
    selector: selectorFor(object.uid),
  };
  // The generation EVERY node has acted on; 0 while no node has reported (the schema's default,
  // so the status read back equals the status written).
  const generations = nodes.map((n) => n.observedGeneration ?? 0);
  status.observedGeneration = generations.length > 0 ? Math.min(...generations) : 0;
  return status;
}

/**
 * Top-level Ready / Progressing / Degraded from the nodes' entries, in node-name order:
 *  - Ready is True iff there is at least one entry and every entry has observed `generation` and
 *    says Ready True; otherwise False with the first offending node's reason, message naming it.
 *  - Degraded is True if any entry says Degraded True (reason and message from the first such node).
 *  - Progressing is True if any entry says Progressing True or has not observed `generation` yet.
 *  - Stalled (kstatus: Failed) is present, True, when an entry that observed `generation` says
 *    Stalled: that node can never become Ready without a change, so neither can the resource, and
 *    a Flux or kstatus wait should fail now rather than at its timeout. It wins over Reconciling.
 *  - Otherwise Reconciling (kstatus: InProgress) is present, True, when an entry says Reconciling
 *    or has not observed `generation` yet, or no node has reported. Neither is present at rest.
 */
export function aggregateConditions(previous: Condition[] | undefined, nodes: readonly NodeStatus[], generation: number, now: Date): Condition[] {
  const sorted = [...nodes].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  const stale = sorted.filter((n) => (n.observedGeneration ?? 0) < generation);
  const staleMessage = (n: NodeStatus) => `node ${n.node}: generation ${generation} not observed yet (last observed ${n.observedGeneration ?? 'none'})`;

  const ready = readyCondition(sorted, generation, staleMessage);
  const degraded = degradedCondition(sorted);
  const progressing = progressingCondition(sorted, stale, staleMessage);
  const abnormal = topKstatusCondition(sorted, stale, generation, staleMessage);
  let list = previous ?? [];
  for (const c of [ready, ...(abnormal ? [abnormal] : []), progressing, degraded]) {
    list = setCondition(list, { ...c, message: truncate(c.message), observedGeneration: generation }, now);
  }
  for (const type of ['Reconciling', 'Stalled'] as const) {
    if (abnormal?.type !== type) list = removeCondition(list, type);
  }
  return list;
}

type AggregateCondition = Omit<Condition, 'lastTransitionTime'>;

const cond = (n: NodeStatus, type: ConditionType) => n.conditions?.find((c) => c.type === type);

/** Ready: True only when every node observed `generation` and says Ready (see aggregateConditions). */
function readyCondition(sorted: readonly NodeStatus[], generation: number, staleMessage: (n: NodeStatus) => string): AggregateCondition {
  if (sorted.length === 0) return { type: 'Ready', status: 'False', reason: 'NoNodeReported', message: 'no node agent has reported yet' };
  const notReady = sorted.find((n) => (n.observedGeneration ?? 0) < generation || cond(n, 'Ready')?.status !== 'True');
  if (notReady) {
    const c = cond(notReady, 'Ready');
    return (notReady.observedGeneration ?? 0) < generation
      ? { type: 'Ready', status: 'False', reason: 'GenerationNotObserved', message: staleMessage(notReady) }
      : {
          type: 'Ready',
          status: 'False',
          reason: c?.reason || 'NodeNotReady',
          message: `node ${notReady.node}: ${c?.message || 'Ready is not True'}`,
        };
  }
  const total = sorted.reduce((acc, n) => acc + n.readyReplicas, 0);
  return {
    type: 'Ready',
    status: 'True',
    reason: 'AllNodesReady',
    message: `${total} replicas ready on ${sorted.length} node${sorted.length === 1 ? '' : 's'}`,
  };
}

/**
 * `type` True from the first node whose own `type` is True, with that node's reason and message
 * (or the defaults when it left them empty); undefined when no node says so.
 */
function firstNodeSaying(sorted: readonly NodeStatus[], type: 'Degraded' | 'Progressing', reason: string, message: string): AggregateCondition | undefined {
  const node = sorted.find((n) => cond(n, type)?.status === 'True');
  if (!node) return undefined;
  const c = cond(node, type);
  return { type, status: 'True', reason: c?.reason || reason, message: `node ${node.node}: ${c?.message || message}` };
}

/** Degraded: True as soon as one node says so. */
function degradedCondition(sorted: readonly NodeStatus[]): AggregateCondition {
  return (
    firstNodeSaying(sorted, 'Degraded', 'NodeDegraded', 'degraded') ?? {
      type: 'Degraded',
      status: 'False',
      reason: 'AsExpected',
      message: 'no node reports a failure',
    }
  );
}

/** Progressing: True while a node says so or has not observed the generation yet. */
function progressingCondition(sorted: readonly NodeStatus[], stale: readonly NodeStatus[], staleMessage: (n: NodeStatus) => string): AggregateCondition {
  const saying = firstNodeSaying(sorted, 'Progressing', 'NodeProgressing', 'progressing');
  if (saying) return saying;
  const firstStale = stale[0];
  if (firstStale) return { type: 'Progressing', status: 'True', reason: 'GenerationNotObserved', message: staleMessage(firstStale) };
  const first = sorted[0];
  const c = first ? cond(first, 'Progressing') : undefined;
  return {
    type: 'Progressing',
    status: 'False',
    reason: c?.reason || (first ? 'Converged' : 'NoNodeReported'),
    message: first ? 'no node is progressing' : 'no node agent has reported yet',
  };
}

/** The top-level Reconciling or Stalled condition (see aggregateConditions), or none at rest. */
function topKstatusCondition(
  sorted: readonly NodeStatus[],
  stale: readonly NodeStatus[],
  generation: number,
  staleMessage: (n: NodeStatus) => string,
): Omit<Condition, 'lastTransitionTime'> | undefined {
  const holding = (n: NodeStatus, type: ConditionType) =>
    (n.observedGeneration ?? 0) >= generation && n.conditions?.some((c) => c.type === type && c.status === 'True');
  const stalled = sorted.filter((n) => holding(n, 'Stalled'));
  const first = stalled[0];
  if (first) {
    const c = first.conditions!.find((x) => x.type === 'Stalled')!;
    const others = stalled.length > 1 ? ` (and ${stalled.length - 1} more node${stalled.length > 2 ? 's' : ''})` : '';
    return { type: 'Stalled', status: 'True', reason: c.reason, message: `node ${first.node}: ${c.message}${others}` };
  }
  const working = sorted.find((n) => holding(n, 'Reconciling'));
  if (working) {
    const c = working.conditions!.find((x) => x.type === 'Reconciling')!;
    return { type: 'Reconciling', status: 'True', reason: c.reason, message: `node ${working.node}: ${c.message}` };
  }
  const firstStale = stale[0];
  if (firstStale) return { type: 'Reconciling', status: 'True', reason: 'GenerationNotObserved', message: staleMessage(firstStale) };
  if (sorted.length === 0) {
    return { type: 'Reconciling', status: 'True', reason: 'NoNodeReported', message: 'no node agent has reported yet' };
  }
  return undefined;
}

/**
 * `entry` as it will be stored: conditions' lastTransitionTime and the entry's lastUpdateTime kept
 * from `previous` while nothing changed, so re-reporting the same state changes nothing.
 */
export function normaliseEntry(previous: NodeStatus | undefined, entry: NodeStatus, now: Date): NodeStatus {
  // Conditions: lastTransitionTime kept from the previous entry while the status stays the same.
  let conditions: Condition[] | undefined;
  if (entry.conditions) {
    const prior = previous?.conditions ?? [];
    conditions = entry.conditions.map((c) => {
      const { lastTransitionTime: _ignored, ...update } = c;
      const kept = setCondition(prior, update, now).find((x) => x.type === c.type);
      return kept ?? { ...c, lastTransitionTime: kubeTime(now) };
    });
  }
  const next: NodeStatus = { ...entry };
  if (conditions) next.conditions = conditions;
  delete next.lastUpdateTime;
  const unchanged = previous !== undefined && canonicalJson(withoutUpdateTime(previous)) === canonicalJson(next);
  next.lastUpdateTime = unchanged && previous.lastUpdateTime ? previous.lastUpdateTime : kubeTime(now);
  return next;
}

function withoutUpdateTime(n: NodeStatus): NodeStatus {
  const copy = { ...n };
  delete copy.lastUpdateTime;
  return copy;
}

const MAX_MESSAGE = 32_768;
function truncate(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE - 3)}...`;
}

/** Deep equality of two statuses as the apiserver would store them. */
export function sameStatus(a: CheckpointReplicaSetStatus | undefined, b: CheckpointReplicaSetStatus | undefined): boolean {
  return canonicalJson(a ?? {}) === canonicalJson(b ?? {});
}
