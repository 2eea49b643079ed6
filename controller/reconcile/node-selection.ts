// spec.nodeSelector: which agents run replicas of a resource. An empty selector selects every node.
import type { CheckpointReplicaSet } from '../api/types.js';

/**
 * true / false, or 'unknown' when the selector is not empty and this agent's Node object is absent
 * (deleted, or re-registering): no labels to match is not "labels do not match", so the reconciler
 * keeps what runs and acts again once the Node is back.
 */
export type NodeSelection = boolean | 'unknown';

/**
 * The labels selectsNode matches against: undefined only when the Node object is absent. A Node
 * without any label has none to match (`{}`), which is not the same as having no Node.
 */
export function nodeLabels(node: { metadata?: { labels?: Record<string, string> } } | undefined): Readonly<Record<string, string>> | undefined {
  return node ? (node.metadata?.labels ?? {}) : undefined;
}

export function selectsNode(resource: CheckpointReplicaSet, nodeLabels: Readonly<Record<string, string>> | undefined): NodeSelection {
  const selector = Object.entries(resource.spec.nodeSelector ?? {});
  if (selector.length === 0) return true;
  if (nodeLabels === undefined) return 'unknown';
  return selector.every(([key, value]) => nodeLabels[key] === value);
}
