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
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { EngineError } from './errors.js';
import { readSmallRegularFile } from './safe-read.js';

/** Docker's rule for checkpoint names; also keeps a name from walking out of the checkpoints folder. */
const CHECKPOINT_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MARKER_PREFIX = 'crs-replica-';
const MARKER_SUFFIX = '.json';
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
 * Validate a `path` source of a resource in `namespace`: a namespace's checkpoints live only under
 * <checkpoint root>/<namespace>/ (whoever can write there decides what that namespace may clone,
 * just as the restore-into-namespaces label does for container sources). Checked lexically first
 * (absolute, no `..`, inside that folder) and then after resolving symlinks (the real folder must
 * still be inside the real namespace folder). Returns the real path of the checkpoint folder.
 * Messages name only the path the tenant wrote and the folder it must be under.
 */
export async function resolvePathSource(requested: string, checkpointRoot: string | undefined, namespace: string): Promise<string> {
  const field = 'checkpoint.path';
  if (!checkpointRoot)
    throw new EngineError('CheckpointNotAllowed', `${field}: ${requested} refused: this agent has no checkpoint root configured, so path sources are disabled`);
  if (!path.isAbsolute(requested)) throw new EngineError('InvalidSpec', `${field}: ${JSON.stringify(requested)} must be an absolute path`);
  if (requested.split('/').includes('..'))
    throw new EngineError('CheckpointNotAllowed', `${field}: ${requested} refused: '..' is not allowed in a checkpoint path`);
  const allowed = namespaceCheckpointDir(checkpointRoot, namespace);
  const lexical = path.resolve(requested);
  if (!isInside(lexical, allowed))
    throw new EngineError('CheckpointNotAllowed', `${field}: ${requested} refused: checkpoints of namespace ${namespace} are read only under ${allowed}/`);
  let realAllowed: string;
  try {
    realAllowed = await fs.realpath(allowed);
  } catch (err) {
    throw new EngineError('CheckpointNotFound', `${field}: ${requested} does not exist on this node (there is no ${allowed}/ for namespace ${namespace})`, {
      cause: err,
    });
  }
  let real: string;
  try {
    real = await fs.realpath(lexical);
  } catch (err) {
    throw new EngineError('CheckpointNotFound', `${field}: ${requested} does not exist on this node`, { cause: err });
  }
  if (!isInside(real, realAllowed))
    throw new EngineError('CheckpointNotAllowed', `${field}: ${requested} refused: it leads through a symlink out of ${allowed}/`);
  const stat = await fs.stat(real);
  if (!stat.isDirectory()) throw new EngineError('CheckpointNotFound', `${field}: ${requested} is not a directory of CRIU image files`);
  return real;
}

/** The only folder path sources of a namespace may name: <checkpoint root>/<namespace>. */
function namespaceCheckpointDir(checkpointRoot: string, namespace: string): string {
  // A Kubernetes namespace is a DNS label: it can be neither '..' nor contain '/'. Checked anyway.
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace))
    throw new EngineError('InvalidSpec', `namespace: ${JSON.stringify(namespace)} is not a Kubernetes namespace name`);
  return path.join(path.resolve(checkpointRoot), namespace);
}

/**
 * A file a path source's folder may hold beside the CRIU images, naming the image the checkpoint was
 * taken in (`docker inspect -f '{{.Image}}' <container>` of the checkpointed container). With it, a
 * wrong template.image fails before any upload, and a ColdStart fallback may run that image; without
 * it, a path source has no cold start. CRIU ignores files it does not know.
 */
export const SOURCE_IMAGE_FILE = 'crs-source-image';
const IMAGE_ID_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** The image id recorded in a path source's folder, or undefined when it records none. */
export async function recordedSourceImage(dir: string, requested: string): Promise<string | undefined> {
  const read = await readSmallRegularFile(path.join(dir, SOURCE_IMAGE_FILE), 256);
  if (read === undefined) return undefined;
  const id = 'text' in read ? read.text.trim() : '';
  if (!IMAGE_ID_PATTERN.test(id))
    throw new EngineError(
      'CheckpointNotAllowed',
      `checkpoint.path: ${requested}/${SOURCE_IMAGE_FILE} must be a regular file holding one image id (sha256:<64 hex digits>)`,
    );
  return id;
}

function isInside(candidate: string, root: string): boolean {
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
    // The code only: the message would name a host path (for a container source, in Docker's data root).
    throw new EngineError('CheckpointNotFound', `${label}: cannot read the checkpoint folder (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
      cause: err,
    });
  }
  for (const entry of entries) {
    const rel = path.relative(dir, path.join(entry.parentPath, entry.name));
    if (entry.isDirectory()) out.dirs.push(rel);
    else if (entry.isFile()) {
      out.files.push(rel);
      out.bytes += (await fs.lstat(path.join(dir, rel))).size;
    } else throw new EngineError('CheckpointNotAllowed', `${label}: ${rel} in the checkpoint folder is not a regular file (symlinks and devices are refused)`);
  }
  out.dirs.sort((a, b) => a.length - b.length);
  if (!out.files.includes('inventory.img'))
    throw new EngineError('CheckpointNotFound', `${label}: the folder holds no CRIU checkpoint (inventory.img is missing)`);
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
 *
 * The listing may be stale by now: someone who can write in the source folder may have swapped a
 * file for a symlink to a host file (a token, a key) since. So every folder and file of the source
 * is opened without following links (through /proc/self/fd/<parent handle>, never by a path that
 * could be re-resolved), checked on the opened handle to be a regular file, and what lands in the
 * copy is proven to be that very file: a hard link must have the inode of the checked handle, a byte
 * copy is read from the handle itself.
 */
export async function placeCheckpoint(source: string, files: CheckpointFiles, dest: string, marker: Marker): Promise<Placement> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await fs.mkdir(dest); // fails with EEXIST instead of mixing two copies
  for (const rel of files.dirs) await fs.mkdir(path.join(dest, rel), { recursive: true });
  const dirs = await openSourceDirs(source, files);
  let linked = 0;
  let copied = 0;
  try {
    for (const rel of files.files) {
      const parent = dirs.get(path.dirname(rel));
      if (!parent) throw notRegular(rel);
      if (await placeFile(parent, path.basename(rel), path.join(dest, rel), rel)) linked++;
      else copied++;
    }
  } finally {
    for (const handle of dirs.values()) await handle.close();
  }
  await fs.writeFile(path.join(dest, markerFileName(marker.containerId)), JSON.stringify(marker), { flag: 'wx' });
  return { dir: dest, linked, copied };
}

const DIR_FLAGS = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW;
const FILE_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;

/** A path the kernel resolves through an opened folder's handle, never again by name. */
function under(dir: FileHandle, name: string): string {
  return `/proc/self/fd/${dir.fd}/${name}`;
}

/** Names only the file inside the checkpoint folder: the folder may be a host path in Docker's data root. */
function notRegular(rel: string): EngineError {
  return new EngineError(
    'CheckpointNotAllowed',
    `checkpoint: ${rel} in the checkpoint folder changed into something other than a regular file or folder while it was being placed (symlinks and devices are refused)`,
  );
}

/** Handles of the source folder and its subfolders (keyed '.' and by relative path), each opened without following a link. */
async function openSourceDirs(source: string, files: CheckpointFiles): Promise<Map<string, FileHandle>> {
  const dirs = new Map<string, FileHandle>();
  const open = async (rel: string, p: string): Promise<void> => {
    try {
      dirs.set(rel, await fs.open(p, DIR_FLAGS));
    } catch (err) {
      for (const handle of dirs.values()) await handle.close();
      if ((err as NodeJS.ErrnoException).code === 'ELOOP' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') throw notRegular(rel);
      throw err;
    }
  };
  await open('.', source);
  for (const rel of files.dirs) {
    const parent = dirs.get(path.dirname(rel));
    if (!parent) throw notRegular(rel);
    await open(rel, under(parent, path.basename(rel)));
  }
  return dirs;
}

/** Place one file from the opened folder `parent`; true when hard-linked, false when copied. */
async function placeFile(parent: FileHandle, name: string, to: string, rel: string): Promise<boolean> {
  let fh: FileHandle;
  try {
    fh = await fs.open(under(parent, name), FILE_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw notRegular(rel);
    throw err;
  }
  try {
    const checked = await fh.stat();
    if (!checked.isFile()) throw notRegular(rel);
    if (await linkChecked(under(parent, name), to, checked)) return true;
    // Read from the handle itself: /proc/self/fd/<n> opens the very file that was checked.
    await fs.copyFile(`/proc/self/fd/${fh.fd}`, to, fsConstants.COPYFILE_EXCL);
    return false;
  } finally {
    await fh.close();
  }
}

/** Hard-link `from` to `to` if that gives exactly the checked file; false when a byte copy is needed instead. */
async function linkChecked(from: string, to: string, checked: { dev: number; ino: number }): Promise<boolean> {
  try {
    await fs.link(from, to); // link() never follows `from` if it is a symlink: it would link the symlink itself
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // EXDEV: another filesystem; EPERM/EACCES: protected_hardlinks or a foreign owner; EMLINK: too many links.
    if (code === 'EXDEV' || code === 'EPERM' || code === 'EACCES' || code === 'EMLINK') return false;
    throw err;
  }
  const made = await fs.lstat(to);
  if (made.isFile() && made.dev === checked.dev && made.ino === checked.ino) return true;
  // The name was swapped between the check and the link: drop what was linked, copy from the handle.
  await fs.unlink(to);
  return false;
}
