// Real files in a temp folder (the filesystem is not a service): where checkpoints may come from
// and how a replica's copy is made.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  containerIdFromMarkerName,
  listCheckpointFiles,
  markerFileName,
  parseMarker,
  placeCheckpoint,
  resolvePathSource,
  type Marker,
} from '../../../controller/engine/checkpoint-placement.js';

let tmp: string;
let root: string;
const ID = 'a'.repeat(64);
const marker: Marker = { v: 1, containerId: ID, ownerUid: 'u1', namespace: 'ns', name: 'web', replicaId: 'r1', attempt: 1, node: 'n1' };

async function makeCheckpoint(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'inventory.img'), 'inv');
  await fs.writeFile(path.join(dir, 'pages-1.img'), Buffer.alloc(4096, 7));
}

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'crs-placement-'));
  root = path.join(tmp, 'checkpoints');
  await makeCheckpoint(path.join(root, 'ns', 'app', 'v1'));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code: string }).code;
  }
  return 'resolved';
}

describe('resolvePathSource: a namespace reads only under <root>/<namespace>/', () => {
  const ns = 'ns';
  it('accepts a folder under the namespace folder and returns its real path', async () => {
    expect(await resolvePathSource(path.join(root, 'ns', 'app', 'v1'), root, ns)).toBe(await fs.realpath(path.join(root, 'ns', 'app', 'v1')));
  });
  it("refuses another namespace's folder and the root itself, naming the folder the namespace may use", async () => {
    await makeCheckpoint(path.join(root, 'other', 'app', 'v1'));
    expect(await code(resolvePathSource(path.join(root, 'other', 'app', 'v1'), root, ns))).toBe('CheckpointNotAllowed');
    await expect(resolvePathSource(path.join(root, 'other', 'app', 'v1'), root, ns)).rejects.toThrow(
      `checkpoints of namespace ns are read only under ${root}/ns/`,
    );
    await makeCheckpoint(path.join(root, 'flat'));
    expect(await code(resolvePathSource(path.join(root, 'flat'), root, ns))).toBe('CheckpointNotAllowed');
    expect(await code(resolvePathSource(path.join(root, 'ns'), root, ns))).toBe('CheckpointNotAllowed');
  });
  it('refuses /etc, .. and relative paths before touching them', async () => {
    expect(await code(resolvePathSource('/etc', root, ns))).toBe('CheckpointNotAllowed');
    expect(await code(resolvePathSource(`${root}/ns/../other/app/v1`, root, ns))).toBe('CheckpointNotAllowed');
    expect(await code(resolvePathSource(`${root}/ns/app/../../x`, root, ns))).toBe('CheckpointNotAllowed');
    expect(await code(resolvePathSource('app/v1', root, ns))).toBe('InvalidSpec');
  });
  it('refuses a prefix sibling (<root>/ns-evil is not under <root>/ns)', async () => {
    await makeCheckpoint(`${root}/ns-evil/v1`);
    expect(await code(resolvePathSource(`${root}/ns-evil/v1`, root, ns))).toBe('CheckpointNotAllowed');
  });
  it("refuses a symlink that leads out of the namespace folder (also into another namespace's), without naming its target", async () => {
    await makeCheckpoint(path.join(tmp, 'secret'));
    await makeCheckpoint(path.join(root, 'other', 'v1'));
    await fs.symlink(path.join(tmp, 'secret'), path.join(root, 'ns', 'escape'));
    await fs.symlink(path.join(root, 'other', 'v1'), path.join(root, 'ns', 'borrow'));
    for (const name of ['escape', 'borrow']) {
      const p = resolvePathSource(path.join(root, 'ns', name), root, ns);
      await expect(p).rejects.toMatchObject({ code: 'CheckpointNotAllowed' });
      await expect(p).rejects.not.toThrow(/secret|other/);
    }
  });
  it('refuses every path source when no root is configured, and names a missing folder', async () => {
    expect(await code(resolvePathSource(path.join(root, 'ns', 'app', 'v1'), undefined, ns))).toBe('CheckpointNotAllowed');
    expect(await code(resolvePathSource(path.join(root, 'ns', 'nope'), root, ns))).toBe('CheckpointNotFound');
    expect(await code(resolvePathSource(path.join(root, 'none', 'x'), root, 'none'))).toBe('CheckpointNotFound');
  });
});

describe('listCheckpointFiles', () => {
  it('lists regular files with their size', async () => {
    const files = await listCheckpointFiles(path.join(root, 'ns', 'app', 'v1'), 'checkpoint.path');
    expect(files.files.sort()).toEqual(['inventory.img', 'pages-1.img']);
    expect(files.bytes).toBe(3 + 4096);
  });
  it('refuses a symlink inside the checkpoint (it could point at /etc/shadow)', async () => {
    await fs.symlink('/etc/hostname', path.join(root, 'ns', 'app', 'v1', 'extra.img'));
    await expect(listCheckpointFiles(path.join(root, 'ns', 'app', 'v1'), 'checkpoint.path')).rejects.toMatchObject({ code: 'CheckpointNotAllowed' });
    // Messages name the file inside the checkpoint, never the host folder (for a container source, Docker's data root).
    await expect(listCheckpointFiles(path.join(root, 'ns', 'app', 'v1'), 'checkpoint.path')).rejects.not.toThrow(tmp);
  });
  it('says CheckpointNotFound for a folder that is no CRIU checkpoint', async () => {
    await fs.mkdir(path.join(root, 'empty'));
    await expect(listCheckpointFiles(path.join(root, 'empty'), 'checkpoint.path')).rejects.toMatchObject({ code: 'CheckpointNotFound' });
  });
});

describe('placeCheckpoint', () => {
  it('hard-links every file (no bytes copied) and adds a marker naming the replica', async () => {
    const src = path.join(root, 'ns', 'app', 'v1');
    const files = await listCheckpointFiles(src, 'x');
    const dest = path.join(tmp, 'docker', 'containers', ID, 'checkpoints', 'crs-restore');
    const placed = await placeCheckpoint(src, files, dest, marker);
    expect(placed).toMatchObject({ linked: 2, copied: 0 });
    const [a, b] = await Promise.all([fs.stat(path.join(src, 'pages-1.img')), fs.stat(path.join(dest, 'pages-1.img'))]);
    expect(b.ino).toBe(a.ino);
    const text = await fs.readFile(path.join(dest, markerFileName(ID)), 'utf8');
    expect(parseMarker(text)).toEqual(marker);
  });
  it('two replicas get copies that differ (distinct markers), so their tars differ', async () => {
    const src = path.join(root, 'ns', 'app', 'v1');
    const files = await listCheckpointFiles(src, 'x');
    const d1 = path.join(tmp, 'c1');
    const d2 = path.join(tmp, 'c2');
    await placeCheckpoint(src, files, d1, marker);
    await placeCheckpoint(src, files, d2, { ...marker, containerId: 'b'.repeat(64) });
    expect((await fs.readdir(d1)).sort()).not.toEqual((await fs.readdir(d2)).sort());
  });
  it('refuses to mix two copies in one folder', async () => {
    const src = path.join(root, 'ns', 'app', 'v1');
    const files = await listCheckpointFiles(src, 'x');
    const dest = path.join(tmp, 'c1');
    await placeCheckpoint(src, files, dest, marker);
    await expect(placeCheckpoint(src, files, dest, marker)).rejects.toMatchObject({ code: 'EEXIST' });
  });
});

describe('placeCheckpoint after the listing went stale (a file swapped for a symlink, a FIFO, a folder)', () => {
  it('refuses a file that became a symlink to a host file, and links or copies nothing of it', async () => {
    const src = path.join(root, 'ns', 'app', 'v1');
    const files = await listCheckpointFiles(src, 'x');
    await fs.writeFile(path.join(tmp, 'token'), 'SECRET');
    await fs.rm(path.join(src, 'pages-1.img'));
    await fs.symlink(path.join(tmp, 'token'), path.join(src, 'pages-1.img'));
    const dest = path.join(tmp, 'c1');
    await expect(placeCheckpoint(src, files, dest, marker)).rejects.toMatchObject({ code: 'CheckpointNotAllowed' });
    await expect(fs.lstat(path.join(dest, 'pages-1.img'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
  it('refuses a FIFO swapped in without blocking on it', async () => {
    const src = path.join(root, 'ns', 'app', 'v1');
    const files = await listCheckpointFiles(src, 'x');
    await fs.rm(path.join(src, 'pages-1.img'));
    execFileSync('mkfifo', [path.join(src, 'pages-1.img')]);
    await expect(placeCheckpoint(src, files, path.join(tmp, 'c1'), marker)).rejects.toMatchObject({ code: 'CheckpointNotAllowed' });
  });
  it('refuses a source folder that became a symlink', async () => {
    const src = path.join(root, 'ns', 'app', 'v1');
    const files = await listCheckpointFiles(src, 'x');
    await makeCheckpoint(path.join(tmp, 'elsewhere'));
    await fs.rename(src, path.join(root, 'ns', 'app', 'v1-moved'));
    await fs.symlink(path.join(tmp, 'elsewhere'), src);
    await expect(placeCheckpoint(src, files, path.join(tmp, 'c1'), marker)).rejects.toMatchObject({ code: 'CheckpointNotAllowed' });
  });
});

describe('marker names', () => {
  it('round-trip a container id and reject anything else', () => {
    expect(containerIdFromMarkerName(markerFileName(ID))).toBe(ID);
    expect(containerIdFromMarkerName('crs-replica-xyz.json')).toBeUndefined();
    expect(containerIdFromMarkerName('inventory.img')).toBeUndefined();
    expect(parseMarker('{broken')).toBeUndefined();
    expect(parseMarker(JSON.stringify({ v: 2 }))).toBeUndefined();
  });
});
