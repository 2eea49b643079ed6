// Orphans: containers whose OWNER_UID names a resource that no longer exists (deleted while no agent
// ran, or its finalizer was removed by hand). Pure decision; the runner does the removing.

import type { Replica } from '../engine/types.js';

export interface OrphanInput {
  /** Every container with an OWNER_UID label on this host (engine.listAllReplicas). */
  replicas: readonly Replica[];
  /** UIDs of every CheckpointReplicaSet that exists, from a SYNCED cache. */
  knownUids: ReadonlySet<string>;
  /** UIDs the runner is reconciling right now (they exist even if the cache lags). */
  activeUids: ReadonlySet<string>;
  now: number;
  /**
   * Containers younger than this are left alone: a resource created a moment ago may not be in the
   * cache yet, and its fresh containers must not be taken for orphans.
   */
  minAgeMs: number;
}

export function findOrphans(input: OrphanInput): Replica[] {
  return input.replicas.filter(
    (r) => r.ownerUid !== '' && !input.knownUids.has(r.ownerUid) && !input.activeUids.has(r.ownerUid) && input.now - r.createdAt.getTime() >= input.minAgeMs,
  );
}

/**
 * Owners of bootstrap checkpoints on this node whose resource no longer exists and who hold no
 * container any more (their orphans are removed first): their checkpoints serve nothing.
 */
export function orphanCheckpointOwners(
  owners: readonly string[],
  input: Pick<OrphanInput, 'knownUids' | 'activeUids'> & { replicaOwners: ReadonlySet<string> },
): string[] {
  return owners.filter((uid) => !input.knownUids.has(uid) && !input.activeUids.has(uid) && !input.replicaOwners.has(uid));
}
