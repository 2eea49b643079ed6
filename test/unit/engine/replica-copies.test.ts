// Finding the engine's own checkpoint copies in a Docker data root: by marker, never by name alone.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findReplicaCopies } from '../../../controller/engine/replica-copies.js';

let root: string;
const id = (c: string): string => c.repeat(64);

async function copy(containerId: string, marker: string | undefined, name = 'crs-restore'): Promise<string> {
  const dir = path.join(root, 'containers', containerId, 'checkpoints', name);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'pages-1.img'), 'x');
  if (marker !== undefined) await fs.writeFile(path.join(dir, `crs-replica-${containerId}.json`), marker);
  return dir;
}

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'crs-copies-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('findReplicaCopies', () => {
  it('finds copies carrying their own container marker, with the marker when readable', async () => {
    const marker = { v: 1, containerId: id('a'), ownerUid: 'u1', namespace: 'n', name: 'x', replicaId: '0', attempt: 1, node: 'n1' };
    const a = await copy(id('a'), JSON.stringify(marker));
    const b = await copy(id('b'), '{"trunc'); // a crash mid-write
    const found = await findReplicaCopies(root);
    expect(found.sort((x, y) => x.dir.localeCompare(y.dir))).toEqual([
      { containerId: id('a'), dir: a, marker },
      { containerId: id('b'), dir: b },
    ]);
  });

  it('ignores copies without a marker, other checkpoints, foreign names and a missing root', async () => {
    await copy(id('c'), undefined);
    await copy(id('d'), '{}', 'warm'); // a user's checkpoint, not ours
    await fs.mkdir(path.join(root, 'containers', 'not-a-container-id', 'checkpoints', 'crs-restore'), { recursive: true });
    expect(await findReplicaCopies(root)).toEqual([]);
    expect(await findReplicaCopies(path.join(root, 'nope'))).toEqual([]);
  });
});
