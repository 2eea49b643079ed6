// spec.nodeSelector: which agents run replicas of a resource. An empty selector selects every node.
import type { CheckpointReplicaSet } from '../api/types.js';

export function selectsNode(resource: CheckpointReplicaSet, nodeLabels: Readonly<Record<string, string>> | undefined): boolean {
  const selector = resource.spec.nodeSelector ?? {};
  return Object.entries(selector).every(([key, value]) => nodeLabels?.[key] === value);
}
