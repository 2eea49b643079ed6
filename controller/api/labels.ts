// Docker labels that mark a container as a replica of a CheckpointReplicaSet. Ownership is proven by
// OWNER_UID alone; the other labels are for people, inventory and planning.

export const LABEL_PREFIX = 'checkpoint.dev/';
/** The owning resource's metadata.uid: the ONLY proof of ownership. */
export const OWNER_UID = 'checkpoint.dev/owner-uid';
export const OWNER_NAMESPACE = 'checkpoint.dev/owner-namespace';
export const OWNER_NAME = 'checkpoint.dev/owner-name';
/** Hash of spec.template + spec.checkpoint; a replica with another hash is out of date. */
export const TEMPLATE_HASH = 'checkpoint.dev/template-hash';
/** Node (agent) that created the replica. */
export const NODE = 'checkpoint.dev/node';
/** Stable id of the replica slot, unique within the resource. */
export const REPLICA_ID = 'checkpoint.dev/replica-id';
/** 1-based attempt number that created this container. */
export const ATTEMPT = 'checkpoint.dev/attempt';
/**
 * 'restore' (started from the checkpoint), 'cold' (fallback: started without it) or 'bootstrap'
 * (started cold to be checkpointed: spec.checkpoint.bootstrap; it stays a replica afterwards).
 */
export const START_MODE = 'checkpoint.dev/start-mode';
export type StartMode = 'restore' | 'cold' | 'bootstrap';
/** Label on the SOURCE container: comma-separated namespaces it may be restored into, or '*'. */
export const RESTORE_INTO_NAMESPACES = 'checkpoint.dev/restore-into-namespaces';
