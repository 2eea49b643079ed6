// A node that leaves for good (its Node object deleted, its agent gone) must not hold the resources
// it ran on: its status.nodes entry would keep counting in the summary, and its finalizer
// `checkpoint.dev/cleanup-<node>` would keep a deleted resource Terminating forever, since only that
// node's agent ever removes it. Every remaining agent sweeps periodically: a node named by an entry
// or a finalizer whose Node has been missing for the whole grace period (as seen by THIS agent, so a
// Node only briefly away or re-created in time keeps everything) has its entry and its finalizer
// removed. Several agents doing it at once is harmless: both writes are conditional on the
// resourceVersion read and find nothing left to do the second time.
//
// A Node deleted while its agent still runs is also "departed" after the grace period; that agent
// writes its entry and finalizer back on its next reconcile (and holds its replicas, see
// reconcile/node-selection.ts), so nothing it runs is lost track of.

import { NODE_FINALIZER_PREFIX, type CheckpointReplicaSet } from '../api/types.js';
import type { Clock } from './clock.js';
import { finalizerFor } from './finalizers.js';
import { noopLogger, type Logger } from './logger.js';
import type { ResourceRef } from '../vocabulary.js';

export interface DepartedNodeSweeperOptions {
  /** This agent's node: never swept by itself. */
  node: string;
  /** How long a Node must be missing before its entry and finalizer go. */
  graceMs: number;
  /** The names of the Node objects that exist (one list call). */
  listNodeNames(): Promise<Set<string>>;
  /** The resources this agent watches (its informer cache). */
  resources(): readonly CheckpointReplicaSet[];
  status: { removeDeparted(ref: ResourceRef, node: string): Promise<unknown> };
  finalizer: { releaseDeparted(ref: ResourceRef, node: string): Promise<void> };
  clock: Pick<Clock, 'now'>;
  logger?: Logger;
}

export interface SweepResult {
  /** Nodes past the grace period in this sweep. */
  departed: string[];
  /** Entries and finalizers removed (or found already gone). */
  cleaned: number;
}

export class DepartedNodeSweeper {
  private readonly missingSince = new Map<string, number>();
  private readonly logger: Logger;

  constructor(private readonly options: DepartedNodeSweeperOptions) {
    if (!(options.graceMs >= 0)) throw new RangeError(`departed nodes: graceMs must be >= 0, got ${options.graceMs}`);
    this.logger = options.logger ?? noopLogger;
  }

  async sweep(): Promise<SweepResult> {
    const resources = this.options.resources();
    const named = new Map<string, CheckpointReplicaSet[]>();
    for (const r of resources) {
      for (const node of nodesNamedBy(r)) {
        if (node !== this.options.node) named.set(node, [...(named.get(node) ?? []), r]);
      }
    }
    // Forget nodes nobody names any more (their entries are gone), so a name reused later starts afresh.
    for (const node of this.missingSince.keys()) if (!named.has(node)) this.missingSince.delete(node);
    if (named.size === 0) return { departed: [], cleaned: 0 };

    const existing = await this.options.listNodeNames();
    const now = this.options.clock.now();
    const departed: string[] = [];
    for (const node of [...named.keys()].sort()) {
      if (existing.has(node)) {
        this.missingSince.delete(node);
        continue;
      }
      const since = this.missingSince.get(node) ?? now;
      this.missingSince.set(node, since);
      if (now - since >= this.options.graceMs) departed.push(node);
    }
    let cleaned = 0;
    for (const node of departed) {
      for (const r of named.get(node) ?? []) {
        const ref = refOf(r);
        await this.options.status.removeDeparted(ref, node);
        await this.options.finalizer.releaseDeparted(ref, node);
        cleaned++;
        this.logger.info('removed the status entry and finalizer of a departed node', {
          resource: `${ref.namespace}/${ref.name}`,
          departedNode: node,
          missingForMs: now - (this.missingSince.get(node) ?? now),
        });
      }
    }
    return { departed, cleaned };
  }
}

/** Nodes a resource names: its status entries, and its finalizers that spell a node name out. */
function nodesNamedBy(r: CheckpointReplicaSet): Set<string> {
  const nodes = new Set((r.status?.nodes ?? []).map((n) => n.node));
  for (const f of r.metadata.finalizers ?? []) {
    if (!f.startsWith(NODE_FINALIZER_PREFIX)) continue;
    const node = f.slice(NODE_FINALIZER_PREFIX.length);
    // A long node name's finalizer is hashed and cannot be read back; its entry names that node.
    if (node && finalizerFor(node) === f) nodes.add(node);
  }
  return nodes;
}

function refOf(r: CheckpointReplicaSet): ResourceRef {
  return { namespace: r.metadata.namespace, name: r.metadata.name, uid: r.metadata.uid, generation: r.metadata.generation ?? 0 };
}
