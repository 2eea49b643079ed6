// Host hygiene. containerd unpacks every restore's checkpoint into a fresh `ctrd-checkpoint<digits>`
// folder under its XDG_RUNTIME_DIR and never removes it (containerd issue 10166): a full copy of
// the checkpoint per restore. The engine's marker file reappears in that folder, so a leaked folder
// is reclaimed only when it carries the marker of one of our replicas: never by name pattern alone.

import fs from 'node:fs/promises';
import path from 'node:path';
import { containerIdFromMarkerName, markerFileName, parseMarker, type Marker } from './checkpoint-placement.js';

const LEAK_DIR_PATTERN = /^ctrd-checkpoint\d+$/;

export interface LeakedCopy {
  dir: string;
  containerId: string;
  /** The marker's content when readable (a crash may leave it truncated). */
  marker?: Marker;
}

/** The ctrd-checkpoint* folders under containerdTmp that carry one of our markers. */
export async function findMarkedCopies(containerdTmp: string): Promise<LeakedCopy[]> {
  let names: string[];
  try {
    names = await fs.readdir(containerdTmp);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const found: LeakedCopy[] = [];
  for (const name of names) {
    if (!LEAK_DIR_PATTERN.test(name)) continue;
    const dir = path.join(containerdTmp, name);
    try {
      const st = await fs.lstat(dir);
      if (!st.isDirectory()) continue;
      for (const entry of await fs.readdir(dir)) {
        const containerId = containerIdFromMarkerName(entry);
        if (!containerId) continue;
        const copy: LeakedCopy = { dir, containerId };
        const marker = parseMarker(await fs.readFile(path.join(dir, entry), 'utf8').catch(() => ''));
        if (marker?.containerId === containerId) copy.marker = marker;
        found.push(copy);
        break;
      }
    } catch (err) {
      // Another sweep (or containerd) removed it between readdir and lstat: nothing to do.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return found;
}

/** The leaked folders of one replica container (normally one per restore attempt of it). */
export async function findCopiesOf(containerdTmp: string, containerId: string): Promise<string[]> {
  const wanted = markerFileName(containerId);
  let names: string[];
  try {
    names = await fs.readdir(containerdTmp);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    if (!LEAK_DIR_PATTERN.test(name)) continue;
    const dir = path.join(containerdTmp, name);
    const st = await fs.lstat(path.join(dir, wanted)).catch(() => undefined);
    if (st?.isFile()) out.push(dir);
  }
  return out;
}

/** Bytes held by the regular files under dir (no symlinks followed). */
export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const st = await fs.lstat(path.join(e.parentPath, e.name)).catch(() => undefined);
    // A hard-linked file frees its bytes only with its last link; count what removal really frees.
    if (st && st.nlink <= 1) total += st.size;
  }
  return total;
}

/** Remove one folder; returns the bytes freed (0 when it was already gone). */
export async function removeFolder(dir: string): Promise<number> {
  const bytes = await folderBytes(dir);
  await fs.rm(dir, { recursive: true, force: true });
  return bytes;
}

/** Free bytes for an unprivileged writer on the filesystem of each path; the smallest wins. */
export async function freeBytes(paths: readonly string[]): Promise<{ bytes: number; path: string }> {
  let best: { bytes: number; path: string } | undefined;
  for (const p of paths) {
    const st = await fs.statfs(p);
    const bytes = st.bavail * st.bsize;
    if (!best || bytes < best.bytes) best = { bytes, path: p };
  }
  if (!best) throw new Error('freeBytes needs at least one path');
  return best;
}
