// Real folders in a temp dir shaped like containerd's leaks.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { markerFileName } from '../../../controller/engine/checkpoint-placement.js';
import { findCopiesOf, findMarkedCopies, folderBytes, freeBytes, removeFolder } from '../../../controller/engine/hygiene.js';

let tmp: string;
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

async function leak(name: string, marker?: string, bytes = 1000): Promise<string> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir);
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
