// Events a reconcile actor accepts. The runner sends SPEC when the generation changed or deletion
// began (work to re-plan), RESYNC for the same spec seen again (watch echo or periodic resync),
// GONE when the object vanished from the API, STOP on shutdown, and ENGINE when the engine's event
// stream saw one of the resource's containers change (`replica`), broke (`lost`) or came back
// (`resumed`), so a dead replica is noticed in seconds rather than at the next resync. CREATED and
// REMOVED come from the open restore window's executor, one per finished create or removal.

import type { CheckpointReplicaSet } from '../../api/types.js';
import type { WindowReport } from './types.js';

export type ReconcileEvent =
  | { type: 'SPEC'; resource: CheckpointReplicaSet }
  | { type: 'RESYNC'; resource: CheckpointReplicaSet }
  | { type: 'GONE' }
  | { type: 'ENGINE'; change: 'replica' | 'lost' | 'resumed'; at: number; died?: string }
  | { type: 'STOP' }
  | WindowReport;
