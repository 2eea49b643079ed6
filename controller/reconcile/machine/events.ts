// Events a reconcile actor accepts. The runner sends SPEC when the generation changed or deletion
// began (work to re-plan), RESYNC for the same spec seen again (watch echo or periodic resync),
// GONE when the object vanished from the API, STOP on shutdown.

import type { CheckpointReplicaSet } from '../../api/types.js';

export type ReconcileEvent =
  | { type: 'SPEC'; resource: CheckpointReplicaSet }
  | { type: 'RESYNC'; resource: CheckpointReplicaSet }
  | { type: 'GONE' }
  | { type: 'STOP' };
