// Where a checkpoint may come from, and how a replica gets its own copy of it.
//
// A checkpoint is the full memory of a process, secrets included: restoring one clones that process.
// So `path` sources are read only under the agent's checkpoint root, container sources only when the
// source container names the resource's namespace, and nothing but regular files is ever linked or
// copied (a symlink inside an allowed folder could otherwise reach anywhere on the host).
//
// Each replica's copy gets a marker file holding its container id. That makes the copy's tar (and
// so its containerd content digest) unique, which stops concurrent restores of one checkpoint from
// colliding in containerd's content store, and the marker reappears in the ctrd-checkpoint* folder
// containerd leaks per restore, so hygiene can trace each leaked folder to exactly one replica.

import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EngineError } from './errors.js';

/** Docker's rule for checkpoint names; also keeps a name from walking out of the checkpoints folder. */
const CHECKPOINT_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const MARKER_PREFIX = 'crs-replica-';
export const MARKER_SUFFIX = '.json';
/** The checkpoint name every replica copy is placed and started under. */
export const REPLICA_CHECKPOINT_NAME = 'crs-restore';

export interface Marker {
  v: 1;
  containerId: string;
  ownerUid: string;
  namespace: string;
  name: string;
  replicaId: string;
  attempt: number;
  node: string;
}

export function markerFileName(containerId: string): string {
  return `${MARKER_PREFIX}${containerId}${MARKER_SUFFIX}`;
}

/** The container id a marker file name carries, or undefined for any other file name. */
export function containerIdFromMarkerName(fileName: string): string | undefined {
  const m = /^crs-replica-([0-9a-f]{64})\.json$/.exec(fileName);
  return m?.[1];
}

export function parseMarker(text: string): Marker | undefined {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null) return undefined;
    const m = v as Record<string, unknown>;
    if (m['v'] !== 1 || typeof m['containerId'] !== 'string' || typeof m['ownerUid'] !== 'string') return undefined;
    return v as Marker;
  } catch {
    return undefined;
  }
}

export function isValidCheckpointName(name: string): boolean {
  return CHECKPOINT_NAME_PATTERN.test(name) && name !== '.' && name !== '..';
}

/** Docker's own folder of a container's checkpoint. */
export function dockerCheckpointDir(dockerRoot: string, containerId: string, checkpointName: string): string {
  return path.join(dockerRoot, 'containers', containerId, 'checkpoints', checkpointName);
}

/**
 * Validate a `path` source against the checkpoint root, lexically first (absolute, no `..`, inside
 * the root) and then after resolving symlinks (the real folder must still be inside the real root).
 * Returns the real path of the checkpoint folder.
 */
export async function resolvePathSource(requested: string, checkpointRoot: string | undefined): Promise<string> {
  const field = 'checkpoint.path';
  if (!checkpointRoot)
    throw new EngineError('CheckpointNotAllowed', `${field}: ${requested} refused: this agent has no checkpoint root configured, so path sources are disabled`);
  if (!path.isAbsolute(requested)) throw new EngineError('InvalidSpec', `${field}: ${JSON.stringify(requested)} must be an absolute path`);
  if (requested.split('/').includes('..'))
    throw new EngineError('CheckpointNotAllowed', `${field}: ${requested} refused: '..' is not allowed in a checkpoint path`);
  const root = path.resolve(checkpointRoot);
  const lexical = path.resolve(requested);
  if (!isInside(lexical, root))
    throw new EngineError('CheckpointNotAllowed', `${field}: ${requested} refused: checkpoints are read only under ${root}`);
  let realRoot: string;
  try {
    realRoot = await fs.realpath(root);
  } catch (err) {
    throw new EngineError('CheckpointNotFound', `${field}: the agent's checkpoint root ${root} does not exist (${(err as Error).message})`, { cause: err });
  }
  let real: string;
  try {
    real = await fs.realpath(lexical);
  } catch (err) {
    throw new EngineError('CheckpointNotFound', `${field}: ${requested} does not exist on this node`, { cause: err });
  }
  if (!isInside(real, realRoot))
    throw new EngineError('CheckpointNotAllowed', `${field}: ${requested} refused: it resolves (through a symlink) to ${real}, outside ${realRoot}`);
  const stat = await fs.stat(real);
  if (!stat.isDirectory()) throw new EngineError('CheckpointNotFound', `${field}: ${requested} is not a directory of CRIU image files`);
  return real;
}

export function isInside(candidate: string, root: string): boolean {
  const rel = path.relative(root, candidate);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

export interface CheckpointFiles {
  /** Paths relative to the checkpoint folder, folders before their contents. */
  dirs: string[];
  files: string[];
  bytes: number;
}

/**
 * The files of a checkpoint folder. Only regular files and folders; a symlink or device anywhere is
 * refused (CheckpointNotAllowed), and a folder without CRIU's inventory.img is CheckpointNotFound.
 */
export async function listCheckpointFiles(dir: string, label: string): Promise<CheckpointFiles> {
  const out: CheckpointFiles = { dirs: [], files: [], bytes: 0 };
  let entries;
  try {
    entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  } catch (err) {
    throw new EngineError('CheckpointNotFound', `${label}: cannot read ${dir}: ${(err as Error).message}`, { cause: err });
  }
  for (const entry of entries) {
    const rel = path.relative(dir, path.join(entry.parentPath, entry.name));
    if (entry.isDirectory()) out.dirs.push(rel);
    else if (entry.isFile()) {
      out.files.push(rel);
      out.bytes += (await fs.lstat(path.join(dir, rel))).size;
    } else throw new EngineError('CheckpointNotAllowed', `${label}: ${path.join(dir, rel)} is not a regular file (symlinks and devices are refused)`);
  }
  out.dirs.sort((a, b) => a.length - b.length);
  if (!out.files.includes('inventory.img'))
    throw new EngineError('CheckpointNotFound', `${label}: ${dir} holds no CRIU checkpoint (inventory.img is missing)`);
  return out;
}

export interface Placement {
  dir: string;
  linked: number;
  copied: number;
}

/**
 * Place a replica's copy of a checkpoint at `dest` (which must not exist): hard links where the
 * filesystem allows (no bytes copied), else a byte copy, plus the marker file.
 */
export async function placeCheckpoint(source: string, files: CheckpointFiles, dest: string, marker: Marker): Promise<Placement> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.mkdir(dest); // fails with EEXIST instead of mixing two copies
  for (const rel of files.dirs) await fs.mkdir(path.join(dest, rel), { recursive: true });
  let linked = 0;
  let copied = 0;
  for (const rel of files.files) {
    const from = path.join(source, rel);
    const to = path.join(dest, rel);
    try {
      await fs.link(from, to);
      linked++;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EXDEV: another filesystem; EPERM/EACCES: protected_hardlinks or a foreign owner; EMLINK: too many links.
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EACCES' && code !== 'EMLINK') throw err;
      await fs.copyFile(from, to, fsConstants.COPYFILE_EXCL);
      copied++;
    }
  }
  await fs.writeFile(path.join(dest, markerFileName(marker.containerId)), JSON.stringify(marker), { flag: 'wx' });
  return { dir: dest, linked, copied };
}
