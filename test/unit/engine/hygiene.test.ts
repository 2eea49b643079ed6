// Real folders in a temp dir shaped like containerd's leaks.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { markerFileName } from '../../../controller/engine/checkpoint-placement.js';
import { MAX_MARKER_BYTES, findCopiesOf, findMarkedCopies, folderBytes, freeBytes, removeFolder } from '../../../controller/engine/hygiene.js';

let tmp: string;
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

async function leak(name: string, marker?: string, bytes = 1000): Promise<string> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir, { mode: 0o700 }); // as containerd makes it (os.MkdirTemp)
  await fs.writeFile(path.join(dir, 'pages-1.img'), Buffer.alloc(bytes));
  if (marker) await fs.writeFile(path.join(dir, markerFileName(marker)), JSON.stringify({ v: 1, containerId: marker, ownerUid: 'u', node: 'n1' }));
  return dir;
}

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'crs-hygiene-'));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('finding leaked copies', () => {
  it('finds only ctrd-checkpoint<digits> folders that carry one of our markers', async () => {
    await leak('ctrd-checkpoint111', A);
    await leak('ctrd-checkpoint222', B);
    await leak('ctrd-checkpoint333'); // another user's restore: no marker
    await leak('ctrd-checkpoint-lookalike', A); // similar name, not containerd's pattern
    await leak('unrelated', A);
    const found = await findMarkedCopies(tmp);
    expect(found.map((f) => path.basename(f.dir)).sort()).toEqual(['ctrd-checkpoint111', 'ctrd-checkpoint222']);
    expect(found.find((f) => f.containerId === A)?.marker?.ownerUid).toBe('u');
    expect((await findCopiesOf(tmp, A)).map((d) => path.basename(d))).toEqual(['ctrd-checkpoint111']);
  });

  it('ignores a symlink named like a leak (it could point anywhere)', async () => {
    const target = await leak('elsewhere', A);
    await fs.symlink(target, path.join(tmp, 'ctrd-checkpoint444'));
    expect(await findMarkedCopies(tmp)).toEqual([]);
  });

  it('treats a missing containerd tmp dir as no leaks', async () => {
    expect(await findMarkedCopies(path.join(tmp, 'nope'))).toEqual([]);
  });
});

describe('refusing what the agent cannot prove it made', () => {
  function collect(): { ignored: [string, string][]; on: (p: string, r: string) => void } {
    const ignored: [string, string][] = [];
    return { ignored, on: (p, r) => ignored.push([path.basename(p), r]) };
  }

  it('ignores and reports a FIFO marker, a marker symlinked to /dev/zero and an oversized marker, without reading them', async () => {
    const fifo = await leak('ctrd-checkpoint1');
    execFileSync('mkfifo', [path.join(fifo, markerFileName(A))]);
    const zero = await leak('ctrd-checkpoint2');
    await fs.symlink('/dev/zero', path.join(zero, markerFileName(B)));
    const big = await leak('ctrd-checkpoint3');
    await fs.writeFile(path.join(big, markerFileName(A)), Buffer.alloc(MAX_MARKER_BYTES + 1, 0x20));
    const { ignored, on } = collect();
    expect(await findMarkedCopies(tmp, on)).toEqual([]);
    expect(ignored.sort()).toEqual([
      [markerFileName(A), 'marker_not_regular_file'],
      [markerFileName(A), 'marker_too_large'],
      [markerFileName(B), 'marker_not_regular_file'],
    ]);
  });

  it('leaves alone folders writable by group/other or owned by another user', async () => {
    const open = await leak('ctrd-checkpoint1', A);
    await fs.chmod(open, 0o777);
    const foreign = await leak('ctrd-checkpoint2', B);
    await fs.chown(foreign, 65534, 65534);
    const { ignored, on } = collect();
    expect(await findMarkedCopies(tmp, on)).toEqual([]);
    expect(await removeFolder(open, on)).toBe(0);
    expect(await removeFolder(foreign, on)).toBe(0);
    expect((await fs.readdir(open)).sort()).toEqual([markerFileName(A), 'pages-1.img'].sort());
    expect(ignored.map(([, r]) => r)).toEqual(Array(4).fill('folder_not_trusted'));
  });

  it('removes symlinks inside a folder as links, never what they point to', async () => {
    const victim = path.join(tmp, 'victim');
    await fs.mkdir(victim);
    await fs.writeFile(path.join(victim, 'keep'), 'precious');
    const dir = await leak('ctrd-checkpoint1', A);
    await fs.symlink(victim, path.join(dir, 'sub'));
    await fs.symlink(path.join(victim, 'keep'), path.join(dir, 'file-link'));
    await fs.mkdir(path.join(dir, 'real-sub'));
    await fs.symlink(victim, path.join(dir, 'real-sub', 'deeper'));
    await removeFolder(dir);
    await expect(fs.lstat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await fs.readFile(path.join(victim, 'keep'), 'utf8')).toBe('precious');
  });
});

describe('removing', () => {
  it('reports the bytes it frees, and counts hard-linked files as freeing nothing', async () => {
    const dir = await leak('ctrd-checkpoint1', A, 5000);
    await fs.link(path.join(dir, 'pages-1.img'), path.join(tmp, 'still-linked'));
    await fs.writeFile(path.join(dir, 'own.img'), Buffer.alloc(300));
    expect(await folderBytes(dir)).toBe(300 + (await fs.stat(path.join(dir, markerFileName(A)))).size);
    const freed = await removeFolder(dir);
    expect(freed).toBeGreaterThanOrEqual(300);
    await expect(fs.stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await removeFolder(dir)).toBe(0);
  });

  it('measures free bytes as the smallest over the given disks', async () => {
    const free = await freeBytes([tmp, os.tmpdir()]);
    expect(free.bytes).toBeGreaterThan(0);
    const st = await fs.statfs(tmp);
    expect(free.bytes).toBeLessThanOrEqual(st.bavail * st.bsize + 10 * 2 ** 20);
  });
});
