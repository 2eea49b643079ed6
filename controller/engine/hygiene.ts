// Host hygiene. containerd unpacks every restore's checkpoint into a fresh `ctrd-checkpoint<digits>`
// folder under its XDG_RUNTIME_DIR and never removes it (containerd issue 10166): a full copy of
// the checkpoint per restore. The engine's marker file reappears in that folder, so a leaked folder
// is reclaimed only when it carries the marker of one of our replicas: never by name pattern alone.
//
// That folder is often world-writable (/tmp), and the agent runs as root, so everything here
// assumes a local user planted what it finds:
// - a folder is reclaimed only when it is owned by the agent's user (root) and writable by nobody
//   else, i.e. containerd made it (os.MkdirTemp: 0700) and no one else can have changed it;
// - a marker is read only as a small regular file (safe-read.ts): a FIFO would block a read
//   forever, a symlink to /dev/zero would fill memory;
// - removal walks directory handles: every entry is reached through /proc/self/fd/<fd of its
//   opened parent> (Node has no unlinkat/openat; that path is resolved by the kernel to the very
//   folder opened, never again by name), subfolders are opened with O_NOFOLLOW, so a subfolder
//   swapped for a symlink mid-walk is unlinked as a link and nothing outside is ever touched.
// What is refused is reported through `onIgnored` (a metric and a debug log in the agent).

import { constants as C } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { containerIdFromMarkerName, markerFileName, parseMarker, type Marker } from './checkpoint-placement.js';
import { readSmallRegularFile } from './safe-read.js';
import type { HygieneIgnoredReason } from './types.js';

const LEAK_DIR_PATTERN = /^ctrd-checkpoint\d+$/;
/** A marker is ~300 bytes of JSON; anything bigger is not ours. */
export const MAX_MARKER_BYTES = 4096;
/** CRIU images are a flat folder; a deeper tree was not made by containerd. */
const MAX_DEPTH = 8;
const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW | C.O_NONBLOCK;

export type OnIgnored = (path: string, reason: HygieneIgnoredReason) => void;

export interface LeakedCopy {
  dir: string;
  containerId: string;
  /** The marker's content when readable (a crash may leave it truncated). */
  marker?: Marker;
}

/** Path of an entry inside an opened folder that the kernel resolves through the handle, not by name. */
function at(dir: FileHandle, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dir.fd}` : `/proc/self/fd/${dir.fd}/${name}`;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** Only the agent's own user (root) may own what it deletes, and nobody else may write to it. */
function trusted(st: { uid: number; mode: number }): boolean {
  return st.uid === process.geteuid?.() && (st.mode & 0o022) === 0;
}

/** True when anyone on the host may create entries in dir (the agent warns: see README Security model). */
export async function isWorldWritable(dir: string): Promise<boolean> {
  return ((await fs.stat(dir)).mode & 0o002) !== 0;
}

/** Open a folder without following a symlink; undefined when it is gone or is not a folder. */
async function openDir(p: string): Promise<FileHandle | undefined> {
  try {
    return await fs.open(p, DIR_FLAGS);
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Open a leaked folder by name inside the opened containerd tmp; undefined unless it is a trusted folder. */
async function openTrustedCopy(root: FileHandle, name: string, onIgnored: OnIgnored, shown: string): Promise<FileHandle | undefined> {
  const dir = await openDir(at(root, name));
  if (!dir) return undefined;
  const st = await dir.stat();
  if (st.isDirectory() && trusted(st)) return dir;
  await dir.close();
  onIgnored(shown, 'folder_not_trusted');
  return undefined;
}

async function openRoot(containerdTmp: string): Promise<FileHandle | undefined> {
  try {
    return await fs.open(containerdTmp, C.O_RDONLY | C.O_DIRECTORY);
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** The ctrd-checkpoint* folders under containerdTmp that carry one of our markers and that we may reclaim. */
export async function findMarkedCopies(containerdTmp: string, onIgnored: OnIgnored = () => {}): Promise<LeakedCopy[]> {
  const root = await openRoot(containerdTmp);
  if (!root) return [];
  const found: LeakedCopy[] = [];
  try {
    for (const name of await fs.readdir(at(root))) {
      if (!LEAK_DIR_PATTERN.test(name)) continue;
      const shown = path.join(containerdTmp, name);
      const dir = await openTrustedCopy(root, name, onIgnored, shown);
      if (!dir) continue;
      try {
        const copy = await markedCopyIn(dir, shown, onIgnored);
        if (copy) found.push(copy);
      } finally {
        await dir.close();
      }
    }
  } finally {
    await root.close();
  }
  return found;
}

async function markedCopyIn(dir: FileHandle, shown: string, onIgnored: OnIgnored): Promise<LeakedCopy | undefined> {
  for (const entry of await fs.readdir(at(dir)).catch(() => [])) {
    const containerId = containerIdFromMarkerName(entry);
    if (!containerId) continue;
    const read = await readSmallRegularFile(at(dir, entry), MAX_MARKER_BYTES);
    if (read === undefined) return undefined; // vanished meanwhile
    if ('refused' in read) {
      onIgnored(path.join(shown, entry), read.refused === 'too_large' ? 'marker_too_large' : 'marker_not_regular_file');
      return undefined;
    }
    const copy: LeakedCopy = { dir: shown, containerId };
    const marker = parseMarker(read.text);
    if (marker?.containerId === containerId) copy.marker = marker;
    return copy;
  }
  return undefined;
}

/** The leaked folders of one replica container (normally one per restore attempt of it). */
export async function findCopiesOf(containerdTmp: string, containerId: string, onIgnored: OnIgnored = () => {}): Promise<string[]> {
  const wanted = markerFileName(containerId);
  const root = await openRoot(containerdTmp).catch(() => undefined);
  if (!root) return [];
  const out: string[] = [];
  try {
    for (const name of await fs.readdir(at(root))) {
      if (!LEAK_DIR_PATTERN.test(name)) continue;
      const st = await fs.lstat(at(root, `${name}/${wanted}`)).catch(() => undefined);
      if (!st) continue;
      if (st.isFile()) out.push(path.join(containerdTmp, name));
      else onIgnored(path.join(containerdTmp, name, wanted), 'marker_not_regular_file');
    }
  } finally {
    await root.close();
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

/**
 * Remove one leaked folder (a direct child of its parent, e.g. containerd's tmp) without following
 * any symlink at any depth, and only when it is trusted (see the top of this file). Returns the
 * bytes freed (0 when it was already gone or was refused).
 */
export async function removeFolder(dir: string, onIgnored: OnIgnored = () => {}): Promise<number> {
  const parent = await openRoot(path.dirname(dir));
  if (!parent) return 0;
  try {
    const name = path.basename(dir);
    const handle = await openTrustedCopy(parent, name, onIgnored, dir);
    if (!handle) return 0;
    let bytes: number;
    try {
      bytes = await removeEntries(handle, 1, dir, onIgnored);
    } finally {
      await handle.close();
    }
    await rmdirQuiet(at(parent, name));
    return bytes;
  } finally {
    await parent.close();
  }
}

/** Entries removed at once: a leaked copy holds a few big files or many small ones (a bound, not a fan-out). */
const REMOVE_BATCH = 16;

/** Empty an opened folder: files and links are unlinked (never followed), folders walked by handle. */
async function removeEntries(dir: FileHandle, depth: number, shown: string, onIgnored: OnIgnored): Promise<number> {
  const names = await fs.readdir(at(dir)).catch(() => []);
  let bytes = 0;
  for (let i = 0; i < names.length; i += REMOVE_BATCH) {
    const freed = await Promise.all(names.slice(i, i + REMOVE_BATCH).map((name) => removeEntry(dir, name, depth, shown, onIgnored)));
    for (const b of freed) bytes += b;
  }
  return bytes;
}

async function removeEntry(dir: FileHandle, name: string, depth: number, shown: string, onIgnored: OnIgnored): Promise<number> {
  const p = at(dir, name);
  const st = await fs.lstat(p).catch(() => undefined);
  if (!st) return 0;
  if (st.isDirectory()) return removeSubfolder(dir, name, depth, path.join(shown, name), onIgnored);
  try {
    await fs.unlink(p); // unlink removes a symlink itself, never its target
  } catch (err) {
    // Swapped for a folder since the lstat (EISDIR) or gone: the next sweep sees it as it is.
    if (errno(err) !== 'ENOENT' && errno(err) !== 'EISDIR' && errno(err) !== 'EPERM') throw err;
    return 0;
  }
  // A hard-linked file frees its bytes only with its last link; count what removal really frees.
  return st.isFile() && st.nlink <= 1 ? st.size : 0;
}

async function removeSubfolder(parent: FileHandle, name: string, depth: number, shown: string, onIgnored: OnIgnored): Promise<number> {
  if (depth >= MAX_DEPTH) {
    onIgnored(shown, 'folder_too_deep');
    return 0;
  }
  const sub = await openDir(at(parent, name));
  if (!sub) {
    // Swapped for a symlink or file since the lstat: remove that link itself.
    await fs.unlink(at(parent, name)).catch(() => undefined);
    return 0;
  }
  let bytes: number;
  try {
    bytes = await removeEntries(sub, depth + 1, shown, onIgnored);
  } finally {
    await sub.close();
  }
  await rmdirQuiet(at(parent, name));
  return bytes;
}

/** rmdir never follows a final symlink (ENOTDIR); a folder refilled meanwhile waits for the next sweep. */
async function rmdirQuiet(p: string): Promise<void> {
  await fs.rmdir(p).catch((err: unknown) => {
    const code = errno(err);
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'ENOTDIR' && code !== 'EEXIST') throw err;
  });
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
