// Checkpoint bootstrap (spec.checkpoint.bootstrap): the agent makes the checkpoint on its own node.
//
// When the node has no checkpoint for a resource's current template, one replica is started cold
// (labelled start-mode 'bootstrap', owned like every replica, so it counts as one and is never
// duplicated), proved ready by the template's readiness probe, left warmupSeconds to warm up, and
// checkpointed with Exit:false (it keeps running as a replica). The others restore from that folder
// through the same placement as a `path` source (./checkpoint-placement.ts: regular files only,
// each replica its own unique copy).
//
// Where: <docker root>/crs-bootstrap/<namespace>/<name>/<uid>/<templateHash>. Only the agent (root)
// writes under the Docker data root; the uid in the path means one resource, and so one namespace,
// never reaches another's checkpoint (a new resource of the same name has a new uid). A checkpoint is
// written to a `<templateHash>.tmp` sibling and renamed once complete: a half-made one is never
// restored, and a .tmp an agent killed mid-bootstrap left is discarded (at start and before a retry).
//
// This file holds the pure decisions and the folder store; docker-engine.ts drives Docker.

import fs from 'node:fs/promises';
import path from 'node:path';
import type { BootstrapSource } from '../api/types.js';
import { SOURCE_IMAGE_FILE } from './checkpoint-placement.js';
import { EngineError } from './errors.js';
import { folderBytes } from './hygiene.js';
import { FairLimiter } from './limiter.js';
import type { BootstrapState, FailureReason, ReplicaOwner } from './types.js';

/** The folder under the Docker data root that holds every bootstrap checkpoint of this node. */
export const BOOTSTRAP_FOLDER = 'crs-bootstrap';
const TMP_SUFFIX = '.tmp';

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const UID = /^[0-9a-zA-Z][-0-9a-zA-Z]{0,62}$/;
const HASH = /^[0-9a-f]{1,64}$/;

/** Why a segment is refused: each is a path component, and none may walk out of the store. */
function segment(value: string, pattern: RegExp, field: string): string {
  if (!pattern.test(value) || value.length > 253)
    throw new EngineError('InvalidSpec', `${field}: ${JSON.stringify(value)} cannot name a bootstrap checkpoint folder`);
  return value;
}

/** <root>/crs-bootstrap/<ns>/<name>/<uid>: every checkpoint of one resource on this node. */
export function ownerFolder(dockerRoot: string, owner: ReplicaOwner): string {
  return path.join(
    path.resolve(dockerRoot),
    BOOTSTRAP_FOLDER,
    segment(owner.namespace, NAMESPACE, 'metadata.namespace'),
    segment(owner.name, NAME, 'metadata.name'),
    segment(owner.uid, UID, 'metadata.uid'),
  );
}

/** The checkpoint folder of one template; its `.tmp` sibling while it is being written. */
export function checkpointFolder(dockerRoot: string, owner: ReplicaOwner, templateHash: string): string {
  return path.join(ownerFolder(dockerRoot, owner), segment(templateHash, HASH, 'template hash'));
}

/**
 * The deadline of a bootstrap attempt: timeoutSeconds to get ready, then the warm-up, then as long
 * as a restore may take for the checkpoint itself (CRIU dumps about as fast as it restores).
 */
export function bootstrapBudgetMs(bootstrap: BootstrapSource, restoreTimeoutMs: number): number {
  return (bootstrap.timeoutSeconds + bootstrap.warmupSeconds) * 1000 + restoreTimeoutMs;
}

/**
 * The reason a failed bootstrap is reported with: the app's or CRIU's fault (never ready, died,
 * checkpoint refused, out of time) is BootstrapFailed, permanent until the spec changes; a cause
 * outside the app (an engine outage, a cancel, a missing image, a host cap) keeps its own reason.
 */
export function bootstrapFailureReason(code: FailureReason): FailureReason {
  const apps: ReadonlySet<FailureReason> = new Set<FailureReason>(['ReadinessTimeout', 'RestoreTimeout', 'CriuFailed', 'Unknown', 'RestoreRace']);
  return apps.has(code) ? 'BootstrapFailed' : code;
}

/** Entries of an owner folder to delete: every template but `keep`, and any .tmp but keep's own while it is made. */
export function reclaimableEntries(entries: readonly string[], keep: string | undefined, making: boolean): string[] {
  return entries.filter((e) => {
    if (keep === undefined) return true;
    if (e === keep) return false;
    if (e === `${keep}${TMP_SUFFIX}`) return !making;
    return true;
  });
}

interface Found {
  owner: ReplicaOwner;
  folder: string;
  entries: string[];
}

/**
 * The folders of bootstrap checkpoints on this node, their state, and one lock per resource so that
 * exactly one replica bootstraps while the others wait for its checkpoint.
 */
export class BootstrapStore {
  private readonly states = new Map<string, BootstrapState>();
  private readonly locks = new Map<string, FairLimiter>();
  /** uids whose bootstrap is being made right now (their .tmp is in use). */
  private readonly making = new Set<string>();

  constructor(private readonly dockerRoot: string) {}

  state(uid: string): BootstrapState | undefined {
    return this.states.get(uid);
  }

  setState(uid: string, state: BootstrapState): void {
    this.states.set(uid, state);
  }

  forget(uid: string): void {
    this.states.delete(uid);
  }

  /** Waits for the resource's turn to look for (and maybe make) its checkpoint. */
  lock(uid: string, signal: AbortSignal, maxWaitMs: number): Promise<() => void> {
    let lock = this.locks.get(uid);
    if (!lock) {
      lock = new FairLimiter(1);
      this.locks.set(uid, lock);
    }
    return lock.acquire(uid, signal, maxWaitMs);
  }

  /** The complete checkpoint folder of this template, or undefined. A symlink anywhere on the way is refused. */
  async ready(owner: ReplicaOwner, templateHash: string): Promise<string | undefined> {
    // From the real data root: a data root that is itself a symlink is the operator's, not a plant.
    const dir = checkpointFolder(await fs.realpath(this.dockerRoot), owner, templateHash);
    const real = await fs.realpath(dir).catch(() => undefined);
    if (real === undefined) return undefined;
    if (real !== dir)
      throw new EngineError(
        'CheckpointNotAllowed',
        `checkpoint.bootstrap: the checkpoint folder of ${owner.namespace}/${owner.name} leads through a symlink; it was not made by the agent`,
      );
    if (this.states.get(owner.uid)?.templateHash !== templateHash || this.states.get(owner.uid)?.phase !== 'Ready') {
      const st = await fs.stat(dir);
      this.states.set(owner.uid, { phase: 'Ready', templateHash, created: st.mtime, bytes: await folderBytes(dir), message: 'checkpoint found on this node' });
    }
    return dir;
  }

  /** A fresh, empty `.tmp` folder for Docker to write the checkpoint into: the folder Docker gets and the checkpoint id. */
  async prepare(owner: ReplicaOwner, templateHash: string): Promise<{ parent: string; id: string }> {
    const parent = ownerFolder(this.dockerRoot, owner);
    await fs.mkdir(parent, { recursive: true, mode: 0o700 });
    const id = `${segment(templateHash, HASH, 'template hash')}${TMP_SUFFIX}`;
    await fs.rm(path.join(parent, id), { recursive: true, force: true });
    this.making.add(owner.uid);
    return { parent, id };
  }

  /** Record the image the checkpoint was taken in and publish the folder by rename; returns its bytes. */
  async commit(owner: ReplicaOwner, templateHash: string, imageId: string): Promise<number> {
    const dir = checkpointFolder(this.dockerRoot, owner, templateHash);
    const tmp = `${dir}${TMP_SUFFIX}`;
    await fs.writeFile(path.join(tmp, SOURCE_IMAGE_FILE), `${imageId}\n`, { flag: 'wx', mode: 0o600 });
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(tmp, dir);
    this.making.delete(owner.uid);
    return folderBytes(dir);
  }

  /** Drop a half-made checkpoint (a failed or cut-short bootstrap). */
  async discard(owner: ReplicaOwner, templateHash: string): Promise<void> {
    this.making.delete(owner.uid);
    await fs.rm(`${checkpointFolder(this.dockerRoot, owner, templateHash)}${TMP_SUFFIX}`, { recursive: true, force: true });
  }

  /** Every resource folder under the store (<ns>/<name>/<uid>), read without following links. */
  private async found(): Promise<Found[]> {
    const root = path.join(path.resolve(this.dockerRoot), BOOTSTRAP_FOLDER);
    const dirs = async (p: string): Promise<string[]> =>
      (await fs.readdir(p, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name);
    const out: Found[] = [];
    for (const namespace of await dirs(root))
      for (const name of await dirs(path.join(root, namespace)))
        for (const uid of await dirs(path.join(root, namespace, name))) {
          const folder = path.join(root, namespace, name, uid);
          out.push({ owner: { namespace, name, uid }, folder, entries: (await fs.readdir(folder).catch(() => [])).sort() });
        }
    return out;
  }

  /** Owner uids with a folder here. */
  async owners(): Promise<string[]> {
    return (await this.found()).map((f) => f.owner.uid);
  }

  /**
   * Delete the resource's checkpoints except `keep` (all when undefined); returns bytes freed. A
   * resource's own .tmp is left alone while its bootstrap runs.
   */
  async reclaim(uid: string, keep?: string): Promise<number> {
    let bytes = 0;
    for (const f of (await this.found()).filter((x) => x.owner.uid === uid)) {
      for (const entry of reclaimableEntries(f.entries, keep, this.making.has(uid))) {
        const p = path.join(f.folder, entry);
        bytes += await folderBytes(p);
        await fs.rm(p, { recursive: true, force: true });
      }
      if (keep === undefined) await removeEmptyUp(f.folder, 3);
    }
    if (keep === undefined) {
      this.states.delete(uid);
      this.locks.delete(uid);
    }
    return bytes;
  }

  /** At agent start: discard every .tmp (a bootstrap cut short) and learn the checkpoints that exist. */
  async recover(): Promise<void> {
    for (const f of await this.found()) {
      for (const entry of f.entries.filter((e) => e.endsWith(TMP_SUFFIX))) await fs.rm(path.join(f.folder, entry), { recursive: true, force: true });
      const done = f.entries.filter((e) => HASH.test(e));
      for (const hash of done) await this.ready(f.owner, hash).catch(() => undefined);
    }
  }
}

/** Remove `dir` and up to `levels - 1` parents while they are empty (rmdir fails on a non-empty one). */
async function removeEmptyUp(dir: string, levels: number): Promise<void> {
  let p = dir;
  for (let i = 0; i < levels; i++) {
    try {
      await fs.rmdir(p);
    } catch {
      return;
    }
    p = path.dirname(p);
  }
}
