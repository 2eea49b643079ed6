// The engine's own checkpoint copies in Docker's data root: each restore places one at
// <root>/containers/<id>/checkpoints/crs-restore/ (with its marker) and removes it once Docker has
// answered the start. An agent killed in between leaves a full copy there for the life of the
// container; the sweep finds such copies by their marker, never by name alone.

import fs from 'node:fs/promises';
import path from 'node:path';
import { REPLICA_CHECKPOINT_NAME, markerFileName, parseMarker, type Marker } from './checkpoint-placement.js';

export interface ReplicaCopy {
  containerId: string;
  /** <root>/containers/<id>/checkpoints/crs-restore */
  dir: string;
  /** The marker's content when readable (a crash may leave it truncated). */
  marker?: Marker;
}

/** Every replica checkpoint copy under `dockerRoot` that carries the marker of its own container. */
export async function findReplicaCopies(dockerRoot: string): Promise<ReplicaCopy[]> {
  const containers = path.join(dockerRoot, 'containers');
  let ids: string[];
  try {
    ids = await fs.readdir(containers);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const found: ReplicaCopy[] = [];
  for (const containerId of ids) {
    if (!/^[0-9a-f]{64}$/.test(containerId)) continue;
    const dir = path.join(containers, containerId, 'checkpoints', REPLICA_CHECKPOINT_NAME);
    const text = await fs.readFile(path.join(dir, markerFileName(containerId)), 'utf8').catch(() => undefined);
    if (text === undefined) continue; // no copy, or not ours
    const copy: ReplicaCopy = { containerId, dir };
    const marker = parseMarker(text);
    if (marker?.containerId === containerId) copy.marker = marker;
    found.push(copy);
  }
  return found;
}
