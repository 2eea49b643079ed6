// Crash leftovers: a restore whose engine died after Docker answered leaves containerd's unpacked
// copy behind. A new engine's start-up sweep reclaims exactly those whose marker names a replica of
// ours that is past its start (or gone), and leaves everything else alone.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPLICA_CHECKPOINT_NAME,
  dockerCheckpointDir,
  listCheckpointFiles,
  markerFileName,
  placeCheckpoint,
} from '../../../controller/engine/checkpoint-placement.js';
import { buildCreateOptions } from '../../../controller/engine/container-spec.js';
import { checkpointStartOptions } from '../../../controller/engine/docker-engine.js';
import { testbed } from '../testbed.js';
import { NODE, docker, makeSource, markedCopiesOf, newEngine, record, removeOwner, specFor, uid, type Source } from './helpers.js';

const bed = testbed();
const d = docker(bed);
let source: Source;
const owners: string[] = [];
const extraDirs: string[] = [];

beforeAll(async () => {
  source = await makeSource(bed, 'crs-engine-it-hygiene-src', '*');
});

afterAll(async () => {
  for (const u of owners) await removeOwner(bed, u);
  for (const dir of extraDirs) await fs.rm(dir, { recursive: true, force: true });
  await d
    .getContainer('crs-engine-it-hygiene-src')
    .remove({ force: true })
    .catch(() => undefined);
});

/** What the engine does up to Docker's answer, done by hand: as if it crashed right after. */
async function restoreThenCrash(ownerUid: string, replicaId: string, start: boolean): Promise<string> {
  const spec = specFor(source, { uid: ownerUid, namespace: 'engine-it', name: 'crash' }, replicaId);
  const c = await d.createContainer(buildCreateOptions({ spec, mode: 'restore', networkMode: 'none' }));
  const files = await listCheckpointFiles(source.dir, 'source');
  await placeCheckpoint(source.dir, files, dockerCheckpointDir(bed.dockerRoot, c.id, REPLICA_CHECKPOINT_NAME), {
    v: 1,
    containerId: c.id,
    ownerUid,
    namespace: 'engine-it',
    name: 'crash',
    replicaId,
    attempt: 1,
    node: NODE,
  });
  if (start) await c.start(checkpointStartOptions(REPLICA_CHECKPOINT_NAME));
  return c.id;
}

describe('start-up sweep after a crash', () => {
  it('reclaims leaked copies of our finished restores only', async () => {
    const ownerUid = uid();
    owners.push(ownerUid);
    const finished = await restoreThenCrash(ownerUid, 'r1', true);
    const gone = await restoreThenCrash(ownerUid, 'r2', true);
    await d.getContainer(gone).remove({ force: true });
    expect(await markedCopiesOf(bed, [finished, gone])).toHaveLength(2);

    // A restore in flight in another engine process: its container is still 'created'. Its copy
    // (here a stand-in folder carrying its marker) must survive the sweep.
    const inFlight = await restoreThenCrash(ownerUid, 'r3', false);
    const inFlightCopy = path.join(bed.containerdTmp, `ctrd-checkpoint${Date.now()}1`);
    await fs.mkdir(inFlightCopy);
    await fs.writeFile(path.join(inFlightCopy, markerFileName(inFlight)), '{}');
    extraDirs.push(inFlightCopy);
    // Another node's marker and an unmarked similar-named folder are not ours to touch either.
    const otherNode = path.join(bed.containerdTmp, `ctrd-checkpoint${Date.now()}2`);
    await fs.mkdir(otherNode);
    await fs.writeFile(
      path.join(otherNode, markerFileName('f'.repeat(64))),
      JSON.stringify({ v: 1, containerId: 'f'.repeat(64), ownerUid, node: 'another-node' }),
    );
    extraDirs.push(otherNode);
    const unmarked = path.join(bed.containerdTmp, `ctrd-checkpoint${Date.now()}3`);
    await fs.mkdir(unmarked);
    await fs.writeFile(path.join(unmarked, 'pages-1.img'), 'someone else');
    extraDirs.push(unmarked);

    const engine = await newEngine(bed, { sweepOnStart: false });
    const events = record(engine);
    const bytes = await engine.sweep();
    expect(await markedCopiesOf(bed, [finished, gone])).toEqual([]);
    expect(bytes).toBeGreaterThan(2 * 10 * 2 ** 20); // two copies of a 16 MB process
    // Two containerd copies, and the finished restore's own copy in Docker's data root (the crash came
    // before the engine removed it); the removed container's folder went with it, the in-flight one stays.
    expect(events).toContainEqual(expect.objectContaining({ type: 'hygiene.reclaimed', paths: 3 }));
    await expect(fs.stat(dockerCheckpointDir(bed.dockerRoot, finished, REPLICA_CHECKPOINT_NAME))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await fs.stat(dockerCheckpointDir(bed.dockerRoot, inFlight, REPLICA_CHECKPOINT_NAME))).isDirectory()).toBe(true);
    for (const dir of [inFlightCopy, otherNode, unmarked]) expect((await fs.stat(dir)).isDirectory()).toBe(true);
    expect(await fs.readFile(path.join(unmarked, 'pages-1.img'), 'utf8')).toBe('someone else');
    // The container of the finished restore itself is untouched: sweeping is about disk, not replicas.
    expect((await d.getContainer(finished).inspect()).State.Running).toBe(true);
    await engine.close();
  });
});
