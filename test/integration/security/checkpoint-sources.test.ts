// Attacks on checkpoint sources, against the real engine and real files. A checkpoint is the full
// memory of a process, secrets included: restoring one clones that process.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RESTORE_INTO_NAMESPACES } from '../../../controller/api/labels.js';
import {
  REPLICA_CHECKPOINT_NAME,
  SOURCE_IMAGE_FILE,
  dockerCheckpointDir,
  listCheckpointFiles,
  placeCheckpoint,
  type Marker,
} from '../../../controller/engine/checkpoint-placement.js';
import type { DockerEngine } from '../../../controller/engine/docker-engine.js';
import { testbed } from '../testbed.js';
import { NODE, containersOf, docker, makeSource, newEngine, removeOwner, specFor, uid, type Source } from '../engine/helpers.js';

const bed = testbed();
const d = docker(bed);
let tmp: string;
let source: Source;
let engine: DockerEngine;
const owners: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
const racers: ChildProcess[] = [];

beforeAll(async () => {
  source = await makeSource(bed, 'crs-security-src', '*');
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'crs-security-'));
});

afterEach(() => {
  for (const r of racers.splice(0)) r.kill('SIGKILL');
});

afterAll(async () => {
  await engine?.close();
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  for (const u of owners) await removeOwner(bed, u);
  await d
    .getContainer(source.id)
    .remove({ force: true })
    .catch(() => undefined);
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

function owner(namespace: string): { uid: string; namespace: string; name: string } {
  const o = { uid: uid(), namespace, name: 'sec' };
  owners.push(o.uid);
  return o;
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('expected a refusal');
}

describe('path sources belong to a namespace: <checkpoint-root>/<namespace>/', () => {
  it("a tenant cannot restore another namespace's checkpoint, nor one at the root, nor reach one through a symlink", async () => {
    const root = path.join(tmp, 'root');
    for (const ns of ['team-a', 'team-b']) await fs.cp(source.dir, path.join(root, ns, 'app'), { recursive: true });
    await fs.cp(source.dir, path.join(root, 'shared'), { recursive: true });
    await fs.symlink(path.join(root, 'team-a', 'app'), path.join(root, 'team-b', 'borrowed'));
    engine = await newEngine(bed, { checkpointRoot: root, sweepOnStart: false });
    const b = owner('team-b');
    for (const p of [path.join(root, 'team-a', 'app'), path.join(root, 'shared'), path.join(root, 'team-b', 'borrowed')]) {
      const e = await refusal(engine.restoreReplica(specFor(source, b, 'r1', { checkpoint: { path: p } }), { timeoutMs: 30_000 }));
      expect(e.code, p).toBe('CheckpointNotAllowed');
      expect(e.message).toMatch(/^checkpoint\.path: .* refused: /);
      expect(e.message).toContain(`${root}/team-b/`); // where this tenant's checkpoints must be
      // Nothing about where the symlink leads, nor another tenant's folder beyond what the tenant wrote.
      if (p.endsWith('borrowed')) expect(e.message).not.toContain(path.join(root, 'team-a'));
    }
    expect(await containersOf(bed, b.uid)).toEqual([]);
    // The owner's own namespace folder works.
    const own = await engine.restoreReplica(specFor(source, b, 'r2', { checkpoint: { path: path.join(root, 'team-b', 'app') } }), { timeoutMs: 60_000 });
    expect(own).toMatchObject({ ready: true, startMode: 'restore' });
  });
});

/** A synthetic checkpoint folder: placement does not care what CRIU would make of it. */
async function makeCheckpointDir(dir: string): Promise<Buffer> {
  await fs.mkdir(dir, { recursive: true });
  const pages = randomBytes(256 * 1024);
  await fs.writeFile(path.join(dir, 'inventory.img'), 'inventory');
  await fs.writeFile(path.join(dir, 'pages-1.img'), pages);
  return pages;
}

/** Keeps swapping <dir>/pages-1.img for a symlink to `target` and back, in its own process. */
function startRacer(dir: string, target: string): ChildProcess {
  const code = `
    const fs = require('fs');
    const [dir, target] = process.argv.slice(1);
    const file = dir + '/pages-1.img', aside = dir + '/pages-1.aside';
    const dwell = () => { const until = process.hrtime.bigint() + BigInt(Math.floor(Math.random() * 300000)); while (process.hrtime.bigint() < until); };
    for (;;) {
      try { fs.renameSync(file, aside); fs.symlinkSync(target, file); } catch {}
      dwell();
      try { fs.unlinkSync(file); fs.renameSync(aside, file); } catch {}
      dwell();
    }`;
  const child = spawn(process.execPath, ['-e', code, dir, target], { cwd: '/', stdio: 'ignore' });
  racers.push(child);
  return child;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Placement into the engine's real data root while a racer swaps pages-1.img for a symlink to a
 * host file. Every round either refuses (CheckpointNotAllowed, or the file is momentarily missing)
 * or places exactly the checkpoint's own bytes: never a symlink, never the host file's content.
 */
async function raceRounds(checkpointDir: string, rounds: number): Promise<{ placed: number; refused: number; linked: number; copied: number }> {
  const pages = await makeCheckpointDir(checkpointDir);
  const secret = path.join(tmp, `host-token-${randomBytes(4).toString('hex')}`);
  await fs.writeFile(secret, 'TOKEN-OF-THE-HOST');
  const files = await listCheckpointFiles(checkpointDir, 'checkpoint.path');
  startRacer(checkpointDir, secret);
  const tally = { placed: 0, refused: 0, linked: 0, copied: 0 };
  for (let round = 0; round < rounds; round++) {
    const id = randomBytes(32).toString('hex');
    const dest = dockerCheckpointDir(bed.dockerRoot, id, REPLICA_CHECKPOINT_NAME);
    const marker: Marker = { v: 1, containerId: id, ownerUid: 'sec', namespace: 'sec', name: 'sec', replicaId: 'r', attempt: 1, node: NODE };
    try {
      const placed = await placeCheckpoint(checkpointDir, files, dest, marker);
      tally.placed++;
      tally.linked += placed.linked;
      tally.copied += placed.copied;
    } catch (err) {
      tally.refused++;
      expect(['CheckpointNotAllowed', 'ENOENT'], String(err)).toContain((err as { code: string }).code);
    }
    const st = await fs.lstat(path.join(dest, 'pages-1.img')).catch(() => undefined);
    if (st) {
      expect(st.isFile(), `round ${round}: pages-1.img in the copy is a ${st.isSymbolicLink() ? 'symlink' : 'non-file'}`).toBe(true);
      expect(sha(await fs.readFile(path.join(dest, 'pages-1.img'))), `round ${round}: the copy holds other bytes than the checkpoint's`).toBe(sha(pages));
    }
    await fs.rm(path.dirname(path.dirname(dest)), { recursive: true, force: true });
  }
  return tally;
}

describe('a source file swapped for a symlink to a host file during placement', () => {
  it('same filesystem (hard links): the copy never is, nor holds, the host file', async () => {
    // Inside the data root: the same filesystem and mount as the copies, whatever /tmp is on a CI machine.
    const sameFs = path.join(bed.dockerRoot, `crs-security-it-${process.pid}`);
    cleanups.push(() => fs.rm(sameFs, { recursive: true, force: true }));
    const t = await raceRounds(path.join(sameFs, 'ckpt'), 150);
    // Both outcomes happened, so the race was really run (placements hard-linked, some refused).
    expect(t.placed).toBeGreaterThan(0);
    expect(t.linked).toBeGreaterThan(0);
  });

  it('another filesystem (byte copies; a tmpfs outside the data root, as the DaemonSet mounts the checkpoint root): the copy never holds the host file', async () => {
    const mnt = await fs.mkdtemp(path.join(os.tmpdir(), 'crs-security-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', mnt]);
    cleanups.push(async () => {
      execFileSync('umount', [mnt]);
      await fs.rmdir(mnt);
    });
    const t = await raceRounds(path.join(mnt, 'ckpt'), 150);
    expect(t.placed).toBeGreaterThan(0);
    expect(t.copied).toBeGreaterThan(0);
    expect(t.linked).toBe(0);
  });
});

describe("the restore permission is the source container's, not its image's", () => {
  const image = 'crs-security-labelled-app:latest';
  const sources: string[] = [];
  afterAll(async () => {
    for (const name of sources)
      await d
        .getContainer(name)
        .remove({ force: true })
        .catch(() => undefined);
    await d
      .getImage(image)
      .remove({ force: true })
      .catch(() => undefined);
  });

  it('an image built with restore-into-namespaces=* opens none of its containers; only a label set on the container counts', async () => {
    // An image whose author put the label in it, as `docker build` with LABEL would.
    const base = await d.createContainer({ Image: bed.sampleImage, HostConfig: { NetworkMode: 'none' } });
    const [repo, tag] = image.split(':');
    await base.commit({ repo, tag, changes: `LABEL ${RESTORE_INTO_NAMESPACES}=*` });
    await base.remove({ force: true });
    expect((await d.getImage(image).inspect()).Config.Labels?.[RESTORE_INTO_NAMESPACES]).toBe('*');

    // The owner of this container never opted in: Docker still shows the image's label on it.
    sources.push('crs-security-img-label');
    const inherited = await makeSource(bed, 'crs-security-img-label', undefined, 16, image);
    expect((await d.getContainer(inherited.id).inspect()).Config.Labels?.[RESTORE_INTO_NAMESPACES]).toBe('*');
    engine ??= await newEngine(bed, { sweepOnStart: false });
    const stranger = owner('stranger');
    const e = await refusal(engine.restoreReplica(specFor(inherited, stranger, 'r1'), { timeoutMs: 60_000 }));
    expect(e.code).toBe('CheckpointNotAllowed');
    expect(e.message).toContain('a value inherited from its image does not count');
    expect(await containersOf(bed, stranger.uid)).toEqual([]);

    // The owner opts in on the container itself: that counts, for the namespaces listed only.
    sources.push('crs-security-own-label');
    const opted = await makeSource(bed, 'crs-security-own-label', 'team-x', 16, image);
    await expect(engine.checkSource(owner('stranger'), { container: opted.name, name: opted.checkpoint })).rejects.toMatchObject({
      code: 'CheckpointNotAllowed',
    });
    const r = await engine.restoreReplica(specFor(opted, owner('team-x'), 'r1'), { timeoutMs: 60_000 });
    expect(r).toMatchObject({ ready: true, startMode: 'restore' });
  });
});

describe('a cold start runs only the image the checkpoint was taken in', () => {
  const privateImage = 'crs-security-private-app:latest';
  afterAll(async () => {
    await d
      .getImage(privateImage)
      .remove({ force: true })
      .catch(() => undefined);
  });

  it("a tenant's ColdStart cannot run another image on the node (another tenant's private one), from a container or a path source", async () => {
    // Another tenant's image on the node: any image but the checkpoint's.
    const base = await d.createContainer({ Image: bed.sampleImage, HostConfig: { NetworkMode: 'none' } });
    const [repo, tag] = privateImage.split(':');
    await base.commit({ repo, tag, changes: 'LABEL owner=someone-else' });
    await base.remove({ force: true });
    const privateId = (await d.getImage(privateImage).inspect()).Id;
    expect(privateId).not.toBe(source.imageId);

    const root = path.join(tmp, 'cold-root');
    const withoutRecord = path.join(root, 'cold', 'plain');
    const recorded = path.join(root, 'cold', 'recorded');
    await fs.cp(source.dir, withoutRecord, { recursive: true });
    await fs.cp(source.dir, recorded, { recursive: true });
    await fs.writeFile(path.join(recorded, SOURCE_IMAGE_FILE), `${source.imageId}\n`);
    const eng = await newEngine(bed, { checkpointRoot: root, sweepOnStart: false });
    cleanups.push(() => eng.close());
    const o = owner('cold');
    const privateTemplate = { image: privateImage, command: ['/app'], env: [{ name: 'APP_MEMORY_MB', value: '1' }] };

    const fromContainer = await refusal(eng.coldStartReplica(specFor(source, o, 'c1', { template: privateTemplate }), { timeoutMs: 30_000 }));
    expect(fromContainer).toMatchObject({
      code: 'InvalidSpec',
      message: expect.stringContaining('a cold start may run only the image the checkpoint was taken in'),
    });
    const fromRecorded = await refusal(
      eng.coldStartReplica(specFor(source, o, 'c2', { template: privateTemplate, checkpoint: { path: recorded } }), { timeoutMs: 30_000 }),
    );
    expect(fromRecorded.code).toBe('InvalidSpec');
    // A path source that records no image has no cold start at all, whatever the image.
    for (const template of [privateTemplate, { image: source.imageId }]) {
      const e = await refusal(eng.coldStartReplica(specFor(source, o, 'c3', { template, checkpoint: { path: withoutRecord } }), { timeoutMs: 30_000 }));
      expect(e).toMatchObject({ code: 'CheckpointNotAllowed', message: expect.stringContaining(`does not record the image its checkpoint was taken in`) });
    }
    expect(await containersOf(bed, o.uid)).toEqual([]);

    // The checkpoint's own image does cold-start, from a container source and from a recording path source.
    const ok1 = await eng.coldStartReplica(specFor(source, o, 'c4'), { timeoutMs: 60_000 });
    const ok2 = await eng.coldStartReplica(specFor(source, o, 'c5', { checkpoint: { path: recorded } }), { timeoutMs: 60_000 });
    expect([ok1.startMode, ok2.startMode]).toEqual(['cold', 'cold']);
    // And the record also stops a restore into a wrong image before any upload.
    const wrong = await refusal(
      eng.restoreReplica(specFor(source, o, 'r1', { template: privateTemplate, checkpoint: { path: recorded } }), { timeoutMs: 30_000 }),
    );
    expect(wrong).toMatchObject({ code: 'InvalidSpec', message: expect.stringContaining('CRIU restores only into the same image') });
  });
});
