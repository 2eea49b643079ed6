// The RestoreEngine over dockerode for one Docker host: the only module of the controller that
// talks to Docker. See ../../docs and issue 4 for the why; the pieces live in small modules:
// container-spec (names, labels, create options), inventory (labels -> replicas), checkpoint-placement
// (where checkpoints may come from, unique hard-linked copies), limiter (per-host fair semaphore),
// hygiene (leaked ctrd-checkpoint copies, disk headroom) and errors (the classifier).

import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { MAX_CONCURRENT_RESTORES } from '../api/schema.js';
import type { CheckpointSource } from '../api/types.js';
import { OWNER_NAME, OWNER_NAMESPACE, OWNER_UID, RESTORE_INTO_NAMESPACES, type StartMode } from '../api/labels.js';
import {
  REPLICA_CHECKPOINT_NAME,
  SOURCE_IMAGE_FILE,
  dockerCheckpointDir,
  recordedSourceImage,
  isValidCheckpointName,
  listCheckpointFiles,
  placeCheckpoint,
  resolvePathSource,
  type CheckpointFiles,
  type Marker,
} from './checkpoint-placement.js';
import { BootstrapStore, bootstrapBudgetMs, bootstrapFailureReason } from './bootstrap.js';
import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import { linkedController, systemClock, withDeadline, type Clock } from './clock.js';
import { buildCreateOptions, replicaContainerName, validateReplicaSpec } from './container-spec.js';
import { EngineError, classifyError, errorShape, isNoSuchContainer, isNotModified } from './errors.js';
import { findCopiesOf, findMarkedCopies, freeBytes, removeFolder } from './hygiene.js';
import { ownerFilter, publishedPorts, replicaFromContainer } from './inventory.js';
import { awaitReadiness, execProbeOnce, hostPortFor, httpGetOnce, runPostRestore, type ProbeOnce } from './probe.js';
import { findReplicaCopies } from './replica-copies.js';
import { watchContainers } from './events-stream.js';
import { FairLimiter, abortedError } from './limiter.js';
import type {
  BootstrapState,
  ContainerWatchEvent,
  EngineEvent,
  HygieneIgnoredReason,
  Replica,
  ReplicaOwner,
  ReplicaSpec,
  RestoreEngine,
  RestoreOptions,
} from './types.js';

/** Removing a half-made container the daemon is still busy with: 0.5 s doubling to 2 s, five tries. */
const DISCARD_RETRY: BackoffPolicy = { initialMs: 500, maxMs: 2_000 };

export interface DockerEngineOptions {
  /** Path of the Docker engine's unix socket, e.g. /run/crs-docker/docker.sock. */
  dockerSocket: string;
  /** The engine's --data-root: checkpoints live at <root>/containers/<id>/checkpoints/<name>/. */
  dockerRoot: string;
  /** containerd's XDG_RUNTIME_DIR, where it leaks one ctrd-checkpoint* copy per restore. */
  containerdTmp: string;
  /** This node's name (label on every replica, and in every marker). */
  node: string;
  /** Restores in flight at once on this host, 1..10. Default 10. */
  concurrencyLimit?: number;
  /** The only folder `path` sources may name. Unset: path sources are refused. */
  checkpointRoot?: string;
  /** Free bytes to keep on the disks beyond what the restores need. Default 1 GiB. */
  diskReserveBytes?: number;
  /** Disk a restore needs, as a multiple of the checkpoint size (tar upload + unpacked copy). Default 3. */
  diskSpaceFactor?: number;
  /** How often to look at the disk again while waiting for room. Default 2000 ms. */
  diskPollMs?: number;
  /** Grace period of `docker stop` on removal. Default 10 s. */
  stopTimeoutSeconds?: number;
  /** Network mode for replicas; default: the source container's, else Docker's default. */
  networkMode?: string;
  /** Address the agent reaches replicas' published ports at (httpGet readiness probes). Default 127.0.0.1. */
  probeAddress?: string;
  /**
   * Host protection set by the node's operator: the most replica containers (of all resources, any
   * state) this host holds. A create beyond it fails with QuotaExceeded. 0 or unset: no cap.
   */
  maxReplicasPerHost?: number;
  /** Reclaim crash leftovers once when the engine is created. Default true. */
  sweepOnStart?: boolean;
  /**
   * Deadline of every Docker call that should answer promptly (ping, list, inspect, create, remove;
   * a stop gets its grace period on top). A call past it fails with EngineUnavailable and its request
   * is aborted: a Docker socket that accepts and never answers must not wedge anything. Default 30 s.
   * The start of a restore is bounded by the restore's own timeoutMs instead (a large checkpoint
   * takes long to upload).
   */
  callTimeoutMs?: number;
  /** Deadline of the removal of what a failed or aborted restore left (its own, not the restore's). Default 30 s. */
  cleanupTimeoutMs?: number;
  /** Test seam: runs after a restore's start returned, before its checkpoint copy is removed (crash tests). */
  afterRestoreStart?: (containerId: string) => Promise<void>;
  clock?: Clock;
}

/** Docker's liveness as the engine saw it through its own calls. */
export interface EngineHealth {
  /** When Docker last answered a call (any HTTP answer, errors included); undefined before the first. */
  lastAnswerAt: Date | undefined;
  /** Whether the latest call that ended got an answer (false after a timeout or a transport error). */
  reachable: boolean;
  /** Docker calls outstanding plus restores holding or waiting for a slot: the engine has work. */
  busy: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 30_000;
const DEFAULT_CLEANUP_TIMEOUT_MS = 30_000;

interface ResolvedSource {
  dir: string;
  files: CheckpointFiles;
  networkMode?: string;
  /** The image of the source container: CRIU restores only into the very same image. */
  imageId?: string;
  /** For messages: "container app-template checkpoint warm" or "path /srv/ckpt/x". */
  description: string;
}

function describeOwner(owner: ReplicaOwner): string {
  return `${owner.namespace}/${owner.name}`;
}

function describeSpec(spec: ReplicaSpec, mode: StartMode): string {
  const what = mode === 'cold' ? 'cold start' : mode === 'bootstrap' ? 'bootstrap cold start' : 'restore';
  return `${what} of ${describeOwner(spec.owner)} replica ${spec.replicaId} (attempt ${spec.attempt})`;
}

function validateOptions(o: DockerEngineOptions): Required<Pick<DockerEngineOptions, 'concurrencyLimit'>> {
  const limit = o.concurrencyLimit ?? MAX_CONCURRENT_RESTORES;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CONCURRENT_RESTORES)
    throw new EngineError(
      'InvalidSpec',
      `concurrencyLimit: ${String(limit)} must be a whole number from 1 to ${MAX_CONCURRENT_RESTORES} (containerd starts at most ${MAX_CONCURRENT_RESTORES} containers at once; more concurrent restores time out)`,
    );
  for (const key of ['dockerSocket', 'dockerRoot', 'containerdTmp'] as const) {
    if (!o[key] || !path.isAbsolute(o[key])) throw new EngineError('InvalidSpec', `${key}: ${JSON.stringify(o[key])} must be an absolute path`);
  }
  if (o.checkpointRoot !== undefined && !path.isAbsolute(o.checkpointRoot))
    throw new EngineError('InvalidSpec', `checkpointRoot: ${JSON.stringify(o.checkpointRoot)} must be an absolute path`);
  if (!o.node) throw new EngineError('InvalidSpec', 'node: is empty; every replica is labelled with the node that made it');
  for (const key of ['diskReserveBytes', 'diskSpaceFactor', 'diskPollMs', 'stopTimeoutSeconds', 'maxReplicasPerHost'] as const) {
    const v = o[key];
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new EngineError('InvalidSpec', `${key}: ${v} must be a number >= 0`);
  }
  for (const key of ['callTimeoutMs', 'cleanupTimeoutMs'] as const) {
    const v = o[key];
    // setTimeout fires at once beyond 2^31-1 ms, which would turn a huge deadline into none at all.
    if (v !== undefined && (!Number.isInteger(v) || v <= 0 || v > 2 ** 31 - 1))
      throw new EngineError('InvalidSpec', `${key}: ${v} must be a whole number of milliseconds from 1 to ${2 ** 31 - 1}`);
  }
  return { concurrencyLimit: limit };
}

/** Fail with a typed error when a folder the engine must write to is missing or read-only. */
async function requireWritableDir(dir: string, field: string, hint: string): Promise<void> {
  try {
    const st = await fs.stat(dir);
    if (!st.isDirectory()) throw new Error('not a directory');
    await fs.access(dir, fsConstants.W_OK);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new EngineError('InvalidSpec', `${field}: ${dir} is not a writable directory (${why}); ${hint}`, { cause: err });
  }
}

/** Create the engine for one Docker host: checks the folders, pings Docker and sweeps crash leftovers. */
export async function createDockerEngine(options: DockerEngineOptions): Promise<DockerEngine> {
  validateOptions(options);
  await requireWritableDir(
    path.join(options.dockerRoot, 'containers'),
    'dockerRoot',
    "point it at the Docker engine's --data-root and run the agent as root (restores place checkpoint files there)",
  );
  await requireWritableDir(options.containerdTmp, 'containerdTmp', "point it at containerd's XDG_RUNTIME_DIR (where it leaks ctrd-checkpoint copies)");
  if (options.checkpointRoot !== undefined) {
    const st = await fs.stat(options.checkpointRoot).catch(() => undefined);
    if (!st?.isDirectory()) throw new EngineError('InvalidSpec', `checkpointRoot: ${options.checkpointRoot} is not a directory on this node`);
  }
  const engine = new DockerEngine(options);
  await engine.ping();
  if (options.sweepOnStart ?? true) await engine.sweep();
  // A bootstrap an agent was killed in left a .tmp: discarded here, redone by the next restore.
  await engine.bootstraps.recover();
  return engine;
}

export class DockerEngine implements RestoreEngine {
  readonly concurrencyLimit: number;
  private readonly docker: Docker;
  private readonly clock: Clock;
  private readonly limiter: FairLimiter;
  private readonly listeners = new Set<(event: EngineEvent) => void>();
  /** Containers between create and the end of their start: their leaked copies are in use. */
  private readonly active = new Set<string>();
  /** Containers a failed operation could not remove (engine unreachable); retried by sweep(). */
  private readonly pendingRemovals = new Map<string, string>();
  private readonly closing = new AbortController();
  private readonly running = new Set<Promise<unknown>>();
  /** Container watches to end on close(). */
  private readonly watches = new Set<() => Promise<void>>();
  private diskReserve: number;
  /** Host-cap checks run one at a time, and count creates that passed the check but are not listed yet. */
  private hostSlotQueue: Promise<unknown> = Promise.resolve();
  private creating = 0;
  /** The host's replica count as last listed, plus the creates finished since (reserveHostSlot). */
  private hostCount: HostCount | undefined;
  /** Disk promised to restores that passed the disk check and have not finished. */
  private diskPromised = 0;
  private readonly callTimeoutMs: number;
  private readonly cleanupTimeoutMs: number;
  /** Docker calls in progress. */
  private outstanding = 0;
  private lastAnswerAt: Date | undefined;
  private reachable = true;
  /** spec.checkpoint.bootstrap: this node's own checkpoints (./bootstrap.ts). */
  readonly bootstraps: BootstrapStore;

  constructor(private readonly options: DockerEngineOptions) {
    this.concurrencyLimit = validateOptions(options).concurrencyLimit;
    this.docker = new Docker({ socketPath: options.dockerSocket });
    this.clock = options.clock ?? systemClock;
    this.limiter = new FairLimiter(this.concurrencyLimit);
    this.diskReserve = options.diskReserveBytes ?? 2 ** 30;
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.cleanupTimeoutMs = options.cleanupTimeoutMs ?? DEFAULT_CLEANUP_TIMEOUT_MS;
    this.bootstraps = new BootstrapStore(options.dockerRoot);
  }

  get health(): EngineHealth {
    return { lastAnswerAt: this.lastAnswerAt, reachable: this.reachable, busy: this.outstanding + this.limiter.inFlight + this.limiter.waiting };
  }

  /**
   * One Docker call under a deadline: `timeoutMs` (default callTimeoutMs) or, with 'caller', only the
   * caller's signal (which must then carry a deadline of its own). Past the deadline the request is
   * aborted and the call fails with EngineUnavailable; an abort by the caller keeps its reason.
   * Docker's own errors (HTTP answers) are rethrown as they are, for the caller to classify. Records
   * whether Docker answered, for /healthz and /readyz.
   */
  private async call<T>(
    what: string,
    signal: AbortSignal | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
    timeoutMs: number | 'caller' = this.callTimeoutMs,
  ): Promise<T> {
    const deadline =
      timeoutMs === 'caller'
        ? { signal: signal ?? this.closing.signal, dispose: () => undefined }
        : withDeadline(
            this.clock,
            timeoutMs,
            () =>
              new EngineError(
                'EngineUnavailable',
                `${what}: the Docker engine at ${this.dockerHost} did not answer within ${timeoutMs} ms; the request was abandoned (is dockerd hung? check it and its containerd)`,
              ),
            signal,
          );
    this.outstanding++;
    try {
      const result = await fn(deadline.signal);
      this.answered(true);
      return result;
    } catch (err) {
      if (errorShape(err).statusCode !== undefined) this.answered(true);
      else if (!signal?.aborted && (deadline.signal.aborted || classifyError(err, { operation: what }).code === 'EngineUnavailable')) this.answered(false);
      if (deadline.signal.aborted) throw abortedError(deadline.signal);
      throw err;
    } finally {
      deadline.dispose();
      this.outstanding--;
    }
  }

  private answered(yes: boolean): void {
    this.reachable = yes;
    if (yes) this.lastAnswerAt = this.clock.now();
  }

  get inFlight(): number {
    return this.limiter.inFlight;
  }

  /** Change the free-disk reserve at run time (an operator freeing or claiming room). */
  setDiskReserveBytes(bytes: number): void {
    if (!Number.isFinite(bytes) || bytes < 0) throw new EngineError('InvalidSpec', `diskReserveBytes: ${bytes} must be a number >= 0`);
    this.diskReserve = bytes;
  }

  watchContainers(listener: (event: ContainerWatchEvent) => void): () => Promise<void> {
    const watch = watchContainers({ docker: this.docker, listener });
    const stop = async (): Promise<void> => {
      this.watches.delete(stop);
      await watch.stop();
    };
    this.watches.add(stop);
    return stop;
  }

  onEvent(listener: (event: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: EngineEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A faulty listener must not break a restore; listeners own their errors.
      }
    }
  }

  private get dockerHost(): string {
    return `unix://${this.options.dockerSocket}`;
  }

  async ping(signal?: AbortSignal): Promise<void> {
    try {
      // dockerode's ping accepts options at run time (docker-modem reads abortSignal); its types do not say so.
      const ping = this.docker.ping.bind(this.docker) as unknown as (opts: { abortSignal?: AbortSignal }) => Promise<unknown>;
      await this.call('ping of the Docker engine', signal, (s) => ping({ abortSignal: s }));
    } catch (err) {
      throw this.toEngineError(err, { operation: 'ping of the Docker engine' }, signal);
    }
  }

  private toEngineError(err: unknown, ctx: { operation: string; image?: string; checkpoint?: string }, signal?: AbortSignal): EngineError {
    if (err instanceof EngineError) return err;
    if (signal?.aborted) return abortedError(signal);
    return classifyError(err, { ...ctx, dockerHost: this.dockerHost });
  }

  // ---------------------------------------------------------------- inventory

  async listReplicas(ownerUid: string, signal?: AbortSignal): Promise<Replica[]> {
    if (!ownerUid) throw new EngineError('InvalidSpec', 'ownerUid: is empty');
    return (await this.list(ownerUid, signal)).filter((r) => r.ownerUid === ownerUid);
  }

  async listAllReplicas(signal?: AbortSignal): Promise<Replica[]> {
    return this.list(undefined, signal);
  }

  private async list(ownerUid: string | undefined, signal?: AbortSignal): Promise<Replica[]> {
    let infos: Docker.ContainerInfo[];
    try {
      infos = await this.call('listing replicas', signal, (s) => this.docker.listContainers({ all: true, filters: ownerFilter(ownerUid), abortSignal: s }));
    } catch (err) {
      throw this.toEngineError(err, { operation: 'listing replicas' }, signal);
    }
    // A replica this engine is still starting (its hook or readiness probe runs) is not ready yet.
    return infos
      .map(replicaFromContainer)
      .filter((r): r is Replica => r !== undefined)
      .map((r) => (this.active.has(r.containerId) ? { ...r, ready: false } : r));
  }

  // ---------------------------------------------------------------- sources

  async checkSource(owner: ReplicaOwner, source: CheckpointSource, signal?: AbortSignal): Promise<void> {
    // A bootstrap source is made on demand: nothing to check before the first restore.
    if (source.bootstrap !== undefined) return;
    await this.resolveSource(owner, source, signal);
  }

  /** The finished bootstrap checkpoint of this template, read like a path source (regular files only). */
  private async resolveBootstrap(owner: ReplicaOwner, templateHash: string | undefined): Promise<ResolvedSource> {
    const dir = templateHash === undefined ? undefined : await this.bootstraps.ready(owner, templateHash);
    if (dir === undefined || templateHash === undefined)
      throw new EngineError('CheckpointNotFound', `checkpoint.bootstrap: node ${this.options.node} has no checkpoint of this template yet`);
    const files = await listCheckpointFiles(dir, 'checkpoint.bootstrap');
    const resolved: ResolvedSource = { dir, files, description: `bootstrap checkpoint ${templateHash}` };
    const imageId = await recordedSourceImage(dir, 'checkpoint.bootstrap');
    if (imageId) resolved.imageId = imageId;
    if (this.options.networkMode) resolved.networkMode = this.options.networkMode;
    this.emit({ type: 'checkpoint.sized', owner, bytes: files.bytes, at: this.clock.now() });
    return resolved;
  }

  bootstrapState(ownerUid: string): BootstrapState | undefined {
    return this.bootstraps.state(ownerUid);
  }

  async reclaimBootstrap(ownerUid: string, keepTemplateHash?: string): Promise<number> {
    const bytes = await this.bootstraps.reclaim(ownerUid, keepTemplateHash);
    if (bytes > 0) this.emit({ type: 'hygiene.reclaimed', bytes, paths: 1, at: this.clock.now() });
    return bytes;
  }

  bootstrapOwners(): Promise<string[]> {
    return this.bootstraps.owners();
  }

  private async resolveSource(owner: ReplicaOwner, source: CheckpointSource, signal?: AbortSignal, templateHash?: string): Promise<ResolvedSource> {
    if (source.bootstrap !== undefined) return this.resolveBootstrap(owner, templateHash);
    const hasContainer = source.container !== undefined && source.container !== '';
    const hasPath = source.path !== undefined && source.path !== '';
    if (hasContainer === hasPath)
      throw new EngineError('InvalidSpec', 'checkpoint: set exactly one of checkpoint.container (with checkpoint.name) or checkpoint.path');
    if (hasPath) {
      const dir = await resolvePathSource(source.path as string, this.options.checkpointRoot, owner.namespace);
      const files = await listCheckpointFiles(dir, 'checkpoint.path');
      const resolved: ResolvedSource = { dir, files, description: `path ${source.path}` };
      const imageId = await recordedSourceImage(dir, source.path as string);
      if (imageId) resolved.imageId = imageId;
      this.emit({ type: 'checkpoint.sized', owner, bytes: files.bytes, at: this.clock.now() });
      if (this.options.networkMode) resolved.networkMode = this.options.networkMode;
      return resolved;
    }
    const containerRef = source.container as string;
    const name = source.name ?? '';
    if (!isValidCheckpointName(name))
      throw new EngineError('InvalidSpec', `checkpoint.name: ${JSON.stringify(name)} must be a Docker checkpoint name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)`);
    const info = await this.allowedSourceContainer(owner, containerRef, signal);
    const dir = dockerCheckpointDir(this.options.dockerRoot, info.Id, name);
    const files = await listCheckpointFiles(dir, `checkpoint ${name} of container ${containerRef}`).catch((err: unknown) => {
      if (err instanceof EngineError && err.code === 'CheckpointNotFound')
        throw new EngineError(
          'CheckpointNotFound',
          `checkpoint.name: container ${containerRef} has no checkpoint ${name} on node ${this.options.node} (${err.message}); take it with docker checkpoint create`,
          { cause: err },
        );
      throw err;
    });
    const resolved: ResolvedSource = { dir, files, imageId: info.Image, description: `container ${containerRef} checkpoint ${name}` };
    this.emit({ type: 'checkpoint.sized', owner, bytes: files.bytes, at: this.clock.now() });
    const networkMode = this.options.networkMode ?? info.HostConfig.NetworkMode;
    if (networkMode) resolved.networkMode = networkMode;
    return resolved;
  }

  /** The source container, once its owner is proven to allow restores into owner's namespace. */
  private async allowedSourceContainer(owner: ReplicaOwner, containerRef: string, signal?: AbortSignal): Promise<Docker.ContainerInspectInfo> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.call(`inspecting source container ${containerRef}`, signal, (s) => this.docker.getContainer(containerRef).inspect({ abortSignal: s }));
    } catch (err) {
      if (isNoSuchContainer(err))
        throw new EngineError(
          'CheckpointNotFound',
          `checkpoint.container: no container ${containerRef} on node ${this.options.node}; create the source container and its checkpoint on this node`,
          { cause: err },
        );
      throw this.toEngineError(err, { operation: `inspecting source container ${containerRef}` }, signal);
    }
    await this.requireRestoreAllowed(owner, containerRef, info, signal);
    return info;
  }

  /**
   * The only image a cold start (the ColdStart fallback) may run: the one the checkpoint was taken
   * in, under the same permission as a restore. Else a tenant could name any checkpoint and start
   * any image on the node (another tenant's privately pulled one) with their own command and env.
   * A path source's folder must record that image (SOURCE_IMAGE_FILE); without it, no cold start.
   */
  private async coldStartImage(owner: ReplicaOwner, source: CheckpointSource, signal?: AbortSignal): Promise<string> {
    if (source.container) return (await this.allowedSourceContainer(owner, source.container, signal)).Image;
    const requested = source.path ?? '';
    const dir = await resolvePathSource(requested, this.options.checkpointRoot, owner.namespace);
    const imageId = await recordedSourceImage(dir, requested);
    if (imageId) return imageId;
    throw new EngineError(
      'CheckpointNotAllowed',
      `restore.fallback: ColdStart refused: checkpoint.path ${requested} does not record the image its checkpoint was taken in ` +
        `(a file ${SOURCE_IMAGE_FILE} holding the image id, e.g. from docker inspect -f '{{.Image}}' <container>), and a cold start may run only that image`,
    );
  }

  /**
   * The source container's owner must list the namespace in RESTORE_INTO_NAMESPACES on the container
   * itself. Docker copies an image's labels into every container of it, so a label equal to the
   * image's own value is the image's, not the owner's, and does not count: else whoever built the
   * image would open every container of it to every namespace. The message names neither the
   * label's value nor the image's (they belong to the source's owner, not to the tenant).
   */
  private async requireRestoreAllowed(owner: ReplicaOwner, containerRef: string, info: Docker.ContainerInspectInfo, signal?: AbortSignal): Promise<void> {
    const own = info.Config.Labels?.[RESTORE_INTO_NAMESPACES];
    let inherited: string | undefined;
    if (own !== undefined) {
      try {
        inherited = (await this.call(`inspecting the image of source container ${containerRef}`, signal, (s) => this.inspectImage(info.Image, s))).Config
          .Labels?.[RESTORE_INTO_NAMESPACES];
      } catch (err) {
        throw this.toEngineError(err, { operation: `inspecting the image of source container ${containerRef}` }, signal);
      }
    }
    const value = own !== undefined && own !== inherited ? own : '';
    const allowed = value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (allowed.includes('*') || allowed.includes(owner.namespace)) return;
    throw new EngineError(
      'CheckpointNotAllowed',
      `checkpoint.container: ${containerRef} does not allow restores into namespace ${owner.namespace}: ` +
        `its own label ${RESTORE_INTO_NAMESPACES} ${value === '' ? 'is absent (a value inherited from its image does not count)' : 'does not list it'}; ` +
        `a checkpoint clones the process with its secrets, so the source's owner must list the namespace in that label on the container`,
    );
  }

  // ---------------------------------------------------------------- disk

  async diskHeadroomBytes(): Promise<number> {
    return (await freeBytes([this.options.dockerRoot, this.options.containerdTmp])).bytes;
  }

  /** Wait (emitting disk.waiting) until the disks have room for `needed` more bytes; returns the release. */
  private async reserveDisk(needed: number, signal: AbortSignal): Promise<() => void> {
    const started = this.clock.now().getTime();
    for (;;) {
      const free = await freeBytes([this.options.dockerRoot, this.options.containerdTmp]);
      const available = free.bytes - this.diskReserve - this.diskPromised;
      if (available >= needed) {
        this.diskPromised += needed;
        let released = false;
        return () => {
          if (!released) this.diskPromised -= needed;
          released = true;
        };
      }
      this.emit({ type: 'disk.waiting', neededBytes: needed, availableBytes: Math.max(0, available), path: free.path, at: this.clock.now() });
      try {
        await this.clock.sleep(this.options.diskPollMs ?? 2000, signal);
      } catch {
        const waited = Math.round((this.clock.now().getTime() - started) / 1000);
        const reason: unknown = signal.reason;
        if (reason instanceof EngineError && reason.code === 'RestoreTimeout')
          throw new EngineError(
            'DiskFull',
            `waited ${waited} s for ${mib(needed)} of free disk on ${free.path} (have ${mib(Math.max(0, available))} beyond the reserve of ${mib(this.diskReserve)}); ` +
              'free space there or lower the number of concurrent restores',
          );
        throw abortedError(signal);
      }
    }
  }

  // ---------------------------------------------------------------- restore

  async restoreReplica(spec: ReplicaSpec, options: RestoreOptions): Promise<Replica> {
    return this.track(this.startReplica(spec, options, 'restore'));
  }

  async coldStartReplica(spec: ReplicaSpec, options: RestoreOptions): Promise<Replica> {
    return this.track(this.startReplica(spec, options, 'cold'));
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    const done = (): void => {
      this.running.delete(p);
    };
    p.then(done, done);
    return p;
  }

  private async startReplica(spec: ReplicaSpec, options: RestoreOptions, mode: StartMode): Promise<Replica> {
    validateReplicaSpec(spec);
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0)
      throw new EngineError('InvalidSpec', `timeoutMs: ${options.timeoutMs} must be a number of milliseconds > 0`);
    if (this.closing.signal.aborted) throw new EngineError('EngineUnavailable', 'the restore engine is closed (the agent is shutting down)');
    const link = linkedController([this.closing.signal, options.signal]);
    try {
      if (mode === 'restore' && spec.checkpoint.bootstrap) return await this.restoreOrBootstrap(spec, options, link.controller.signal);
      return await this.startLinked(spec, options, mode, link.controller.signal);
    } finally {
      link.unlink();
    }
  }

  /**
   * A restore of a bootstrap source: from this node's checkpoint of the template when it exists,
   * else this replica becomes the one that makes it. One at a time per resource: the others wait
   * (within their queue bound) and then restore from what it made.
   */
  private async restoreOrBootstrap(spec: ReplicaSpec, options: RestoreOptions, outer: AbortSignal): Promise<Replica> {
    const unlock = await this.bootstraps.lock(spec.owner.uid, outer, options.queueTimeoutMs ?? options.timeoutMs).catch((err: unknown) => {
      throw this.toEngineError(err, { operation: describeSpec(spec, 'restore') }, outer);
    });
    try {
      if (await this.bootstraps.ready(spec.owner, spec.templateHash)) {
        unlock();
        return await this.startLinked(spec, options, 'restore', outer);
      }
      return await this.bootstrapReplica(spec, options, outer);
    } finally {
      unlock();
    }
  }

  /** Start this replica cold, warm it up and checkpoint it (runOnce, mode 'bootstrap'); reports the outcome. */
  private async bootstrapReplica(spec: ReplicaSpec, options: RestoreOptions, outer: AbortSignal): Promise<Replica> {
    const bootstrap = spec.checkpoint.bootstrap!;
    const { owner, templateHash } = spec;
    const t0 = this.clock.now().getTime();
    const seconds = (): number => (this.clock.now().getTime() - t0) / 1000;
    this.emit({ type: 'bootstrap.started', owner, templateHash, at: this.clock.now() });
    this.bootstraps.setState(owner.uid, { phase: 'Bootstrapping', templateHash, message: `replica ${spec.replicaId} started cold to be checkpointed` });
    try {
      const replica = await this.startLinked(spec, { ...options, timeoutMs: bootstrapBudgetMs(bootstrap, options.timeoutMs) }, 'bootstrap', outer);
      const state = this.bootstraps.state(owner.uid);
      this.emit({ type: 'bootstrap.succeeded', owner, templateHash, bytes: state?.bytes ?? 0, durationSeconds: seconds(), at: this.clock.now() });
      return replica;
    } catch (err) {
      await this.bootstraps.discard(owner, templateHash).catch(() => undefined);
      const e = err instanceof EngineError ? err : this.toEngineError(err, { operation: describeSpec(spec, 'bootstrap') }, outer);
      const reason = bootstrapFailureReason(e.code);
      const failed = reason === e.code ? e : new EngineError(reason, `checkpoint.bootstrap: ${e.message}`, { cause: e });
      // Cancelled (scale-down, deletion, shutdown): nothing failed; the next restore bootstraps again.
      if (failed.code === 'Aborted') this.bootstraps.forget(owner.uid);
      else {
        this.bootstraps.setState(owner.uid, { phase: 'Failed', templateHash, message: `${failed.code}: ${failed.message}` });
        this.emit({ type: 'bootstrap.failed', owner, templateHash, message: failed.message, durationSeconds: seconds(), at: this.clock.now() });
      }
      throw failed;
    }
  }

  /**
   * The bootstrap replica is ready (its probe passed): wait warmupSeconds, checkpoint it into a
   * .tmp folder without stopping it, then publish the folder by rename. No host slot is held.
   */
  private async checkpointWarm(spec: ReplicaSpec, containerId: string, signal: AbortSignal): Promise<void> {
    const what = describeSpec(spec, 'bootstrap');
    const warmup = spec.checkpoint.bootstrap?.warmupSeconds ?? 0;
    if (warmup > 0) await this.clock.sleep(warmup * 1000, signal);
    const { parent, id } = await this.bootstraps.prepare(spec.owner, spec.templateHash);
    const container = this.docker.getContainer(containerId);
    const info = await this.call(`${what}: inspecting before the checkpoint`, signal, (s) => container.inspect({ abortSignal: s }));
    if (!info.State.Running)
      throw new EngineError(
        'Unknown',
        `${what}: the container stopped while warming up (exit code ${info.State.ExitCode}); see docker logs ${containerId.slice(0, 12)}`,
      );
    try {
      // Bounded by the bootstrap's deadline: a large process takes a while to dump.
      await this.call(`${what}: checkpointing`, signal, (s) => this.createCheckpoint(containerId, parent, id, s), 'caller');
    } catch (err) {
      const e = this.toEngineError(err, { operation: `${what}: checkpointing` }, signal);
      throw e.code === 'Aborted' || e.code === 'EngineUnavailable'
        ? e
        : new EngineError('CriuFailed', `${what}: docker checkpoint create failed: ${e.message}`, { cause: e });
    }
    const bytes = await this.bootstraps.commit(spec.owner, spec.templateHash, info.Image);
    this.bootstraps.setState(spec.owner.uid, {
      phase: 'Ready',
      templateHash: spec.templateHash,
      created: this.clock.now(),
      bytes,
      message: `checkpoint of replica ${spec.replicaId} made on this node`,
    });
    this.emit({ type: 'checkpoint.sized', owner: spec.owner, bytes, at: this.clock.now() });
  }

  /** POST /containers/{id}/checkpoints with a checkpoint folder of our own, through the modem so the signal reaches the request. */
  private createCheckpoint(containerId: string, dir: string, id: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      this.docker.modem.dial(
        {
          path: `/containers/${containerId}/checkpoints`,
          method: 'POST',
          abortSignal: signal,
          allowEmpty: true,
          statusCodes: { 200: true, 201: true, 204: true, 404: 'no such container', 500: 'server error' },
          options: { CheckpointID: id, CheckpointDir: dir, Exit: false },
        },
        (err: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
      );
    });
  }

  /** startReplica, under `outer`: the caller's signal or the engine's closing, whichever fires first. */
  private async startLinked(spec: ReplicaSpec, options: RestoreOptions, mode: StartMode, outer: AbortSignal): Promise<Replica> {
    const base = { owner: spec.owner, replicaId: spec.replicaId, attempt: spec.attempt };
    const queuedAt = this.clock.now();
    if (mode === 'restore') this.emit({ type: 'restore.queued', ...base, at: queuedAt });
    let release: () => void;
    try {
      release = await this.limiter.acquire(spec.owner.uid, outer, options.queueTimeoutMs ?? options.timeoutMs);
    } catch (err) {
      const e = this.toEngineError(err, { operation: describeSpec(spec, mode) }, outer);
      if (mode === 'restore') this.emitFailed(spec, e, queuedAt);
      throw e;
    }
    const startedAt = this.clock.now();
    if (mode === 'restore') this.emit({ type: 'restore.started', ...base, at: startedAt, inFlight: this.limiter.inFlight });
    const deadline = withDeadline(
      this.clock,
      options.timeoutMs,
      () =>
        new EngineError(
          'RestoreTimeout',
          `${describeSpec(spec, mode)} did not finish within ${options.timeoutMs} ms; the half-made container was removed. ` +
            'A large checkpoint or a busy host needs a longer spec.restore.timeoutSeconds',
        ),
      outer,
    );
    try {
      const replica = await this.runOnce(spec, mode, deadline.signal, release);
      deadline.dispose();
      release();
      const at = this.clock.now();
      if (mode === 'restore')
        this.emit({
          type: 'restore.succeeded',
          ...base,
          containerId: replica.containerId,
          at,
          durationSeconds: (at.getTime() - startedAt.getTime()) / 1000,
          inFlight: this.limiter.inFlight,
        });
      else this.emit({ type: 'coldstart.succeeded', owner: spec.owner, replicaId: spec.replicaId, containerId: replica.containerId, at });
      return replica;
    } catch (err) {
      deadline.dispose();
      release();
      const e = this.toEngineError(err, { operation: describeSpec(spec, mode), image: spec.template.image }, deadline.signal);
      if (mode === 'restore') this.emitFailed(spec, e, startedAt);
      throw e;
    }
  }

  private emitFailed(spec: ReplicaSpec, e: EngineError, since: Date): void {
    const at = this.clock.now();
    this.emit({
      type: 'restore.failed',
      owner: spec.owner,
      replicaId: spec.replicaId,
      attempt: spec.attempt,
      reason: e.code,
      transient: e.transient,
      message: e.message,
      at,
      durationSeconds: (at.getTime() - since.getTime()) / 1000,
      inFlight: this.limiter.inFlight,
    });
  }

  /**
   * One attempt while holding a limiter slot. On failure nothing half-made is left behind: the slot
   * is released first (`release`), then the clean-up runs under its own deadline, so a Docker that
   * hangs on the removal holds no slot and no caller longer than cleanupTimeoutMs.
   */
  private async runOnce(spec: ReplicaSpec, mode: StartMode, signal: AbortSignal, release: () => void): Promise<Replica> {
    const what = describeSpec(spec, mode);
    let source: ResolvedSource | undefined;
    let releaseDisk = (): void => undefined;
    if (mode === 'restore') {
      source = await this.resolveSource(spec.owner, spec.checkpoint, signal, spec.templateHash);
      releaseDisk = await this.reserveDisk(source.files.bytes * (this.options.diskSpaceFactor ?? 3), signal);
    }
    // A bootstrap source's replicas run the template's own image, like any container the tenant
    // could ask for (the bootstrap itself, and the ColdStart fallback).
    const ownImage = mode === 'bootstrap' || spec.checkpoint.bootstrap !== undefined;
    const sourceImageId = source ? source.imageId : ownImage ? undefined : await this.coldStartImage(spec.owner, spec.checkpoint, signal);
    await this.requireImage(spec, mode, sourceImageId, signal);
    const networkMode = source?.networkMode ?? this.options.networkMode;
    const createOptions = buildCreateOptions({ spec, mode, ...(networkMode ? { networkMode } : {}) });
    let containerId: string | undefined;
    try {
      const releaseHostSlot = await this.reserveHostSlot(signal);
      try {
        containerId = (await this.call(`${what}: creating the container`, signal, (s) => this.docker.createContainer({ ...createOptions, abortSignal: s }))).id;
      } catch (err) {
        const e = this.toEngineError(err, { operation: `${what}: creating the container`, image: spec.template.image }, signal);
        // A create cut short may still have happened on the daemon: find it by name, prove it ours by label.
        release();
        if (e.code !== 'NameConflict') await this.removeIfOurs(replicaContainerName(spec), spec.owner.uid);
        throw e;
      } finally {
        releaseHostSlot(); // the container is listed now (or was never made)
      }
      this.active.add(containerId);
      const container = this.docker.getContainer(containerId);
      if (mode === 'restore' && source) {
        const dest = dockerCheckpointDir(this.options.dockerRoot, containerId, REPLICA_CHECKPOINT_NAME);
        const marker: Marker = {
          v: 1,
          containerId,
          ownerUid: spec.owner.uid,
          namespace: spec.owner.namespace,
          name: spec.owner.name,
          replicaId: spec.replicaId,
          attempt: spec.attempt,
          node: this.options.node,
        };
        try {
          await placeCheckpoint(source.dir, source.files, dest, marker);
        } catch (err) {
          throw placementError(err, what);
        }
        try {
          // Bounded by the restore's timeoutMs (the signal): uploading a large checkpoint takes a while.
          await this.call(
            `${what}: starting from the checkpoint`,
            signal,
            (s) => container.start(checkpointStartOptions(REPLICA_CHECKPOINT_NAME, s)),
            'caller',
          );
          await this.options.afterRestoreStart?.(containerId);
        } finally {
          // The copy served its purpose once Docker answered; the leaked unpacked copy too.
          await fs.rm(path.dirname(dest), { recursive: true, force: true }).catch(() => undefined);
          await this.reclaimCopiesOf(containerId);
        }
      } else {
        const id = containerId;
        await this.call(`${what}: starting the container`, signal, (s) => this.docker.getContainer(id).start({ abortSignal: s }), 'caller');
      }
      const info = await this.call(`${what}: inspecting the started container`, signal, (s) => container.inspect({ abortSignal: s }));
      if (!info.State.Running)
        throw new EngineError(
          'Unknown',
          `${what}: the container ${info.Name.replace(/^\//, '')} is ${info.State.Status} right after its start (exit code ${info.State.ExitCode}${info.State.Error ? `, ${info.State.Error}` : ''}); see docker logs ${containerId.slice(0, 12)}`,
        );
      await this.proveServing(spec, mode, info, signal, release);
      if (mode === 'bootstrap') {
        release(); // warm-up and checkpoint need no containerd start slot
        await this.checkpointWarm(spec, containerId, signal);
      }
      const id = containerId;
      const listed = await this.call(`${what}: listing the started container`, signal, (s) =>
        this.docker.listContainers({ all: true, filters: { id: [id] }, abortSignal: s }),
      );
      const replica = listed[0] ? replicaFromContainer(listed[0]) : undefined;
      if (!replica) throw new EngineError('Unknown', `${what}: the container ${containerId.slice(0, 12)} vanished right after its start`);
      return replica;
    } catch (err) {
      const e = this.toEngineError(err, { operation: what, image: spec.template.image, ...(source ? { checkpoint: source.description } : {}) }, signal);
      release();
      if (containerId !== undefined) await this.discard(containerId);
      throw e;
    } finally {
      if (containerId !== undefined) this.active.delete(containerId);
      releaseDisk();
    }
  }

  /**
   * The post-restore hook (restores only: a cold start is a fresh process with nothing to re-identify)
   * and then the readiness probe, under the restore's deadline. The host slot is given back first:
   * neither needs containerd, and a slow probe must not hold up other restores.
   */
  private async proveServing(spec: ReplicaSpec, mode: StartMode, info: Docker.ContainerInspectInfo, signal: AbortSignal, release: () => void): Promise<void> {
    const { postRestore, readinessProbe } = spec.template;
    const hook = mode === 'restore' ? postRestore : undefined;
    if (!hook && !readinessProbe) return;
    release();
    const what = describeSpec(spec, mode);
    if (hook) await runPostRestore(this.docker, info.Id, hook, signal, what);
    if (readinessProbe) await awaitReadiness(readinessProbe, this.probeOnce(readinessProbe, info), this.clock, signal, what);
  }

  private probeOnce(probe: NonNullable<ReplicaSpec['template']['readinessProbe']>, info: Docker.ContainerInspectInfo): ProbeOnce {
    if (probe.exec) {
      const action = probe.exec;
      return (timeoutMs, signal) => execProbeOnce(this.docker, info.Id, action, timeoutMs, signal);
    }
    const get = probe.httpGet;
    if (!get) throw new EngineError('InvalidSpec', 'template.readinessProbe: set exactly one of exec or httpGet');
    const hostPort = hostPortFor(publishedPorts(inspectPorts(info)).ports, get.port);
    if (hostPort === undefined)
      throw new EngineError(
        'InvalidSpec',
        `template.readinessProbe.httpGet.port: ${get.port} is not a published TCP port of the replica (list it in template.ports)`,
      );
    const address = this.options.probeAddress ?? '127.0.0.1';
    return (timeoutMs, signal) => httpGetOnce(address, hostPort, get.path, timeoutMs, signal);
  }

  /**
   * The template's image must exist here, and for a container source be the source's very image:
   * CRIU refuses another binary ("File app has bad build-ID"), which otherwise shows only as an
   * opaque CRIU failure after a full upload of the checkpoint.
   */
  private async requireImage(spec: ReplicaSpec, mode: StartMode, sourceImageId: string | undefined, signal: AbortSignal): Promise<void> {
    let imageId: string;
    try {
      imageId = (await this.call(`${describeSpec(spec, mode)}: looking up template.image`, signal, (s) => this.inspectImage(spec.template.image, s))).Id;
    } catch (err) {
      throw this.toEngineError(err, { operation: `${describeSpec(spec, mode)}: looking up template.image`, image: spec.template.image }, signal);
    }
    if (sourceImageId !== undefined && imageId !== sourceImageId)
      throw new EngineError(
        'InvalidSpec',
        `template.image: ${spec.template.image} is ${imageId.slice(0, 19)}, but the checkpoint was taken in a container of image ${sourceImageId.slice(0, 19)}; ` +
          (mode === 'cold'
            ? 'a cold start may run only the image the checkpoint was taken in: set template.image to that image (by id if its tag moved)'
            : 'CRIU restores only into the same image: set template.image to that image (by id if its tag moved), or take a new checkpoint'),
      );
  }

  /**
   * The operator's cap on replica containers on this host (--max-replicas-per-host). Checks run one
   * at a time and count creates in flight, so concurrent restores cannot together pass the cap. The
   * count is listed again only when the estimate reaches the cap or is old (mustRecount): listing
   * every replica of the host for every create made 1000 creates read about a million containers.
   * The message gives the tenant the cap and the count, nothing about other tenants' resources.
   */
  private async reserveHostSlot(signal: AbortSignal): Promise<() => void> {
    const cap = this.options.maxReplicasPerHost ?? 0;
    if (cap === 0) return () => undefined;
    const turn = this.hostSlotQueue.then(async () => {
      if (mustRecount(this.hostCount, cap, this.creating, this.clock.now().getTime())) {
        const listed = (await this.list(undefined, signal)).length;
        this.hostCount = { listed, since: 0, at: this.clock.now().getTime() };
      }
      const count = this.hostCount!;
      const held = count.listed + count.since + this.creating;
      if (held >= cap)
        throw new EngineError(
          'QuotaExceeded',
          `node ${this.options.node} already holds ${held} replica containers, the most its operator allows (--max-replicas-per-host=${cap}); ` +
            'what runs is kept, and the agent tries again later; ask the node operator for room or run fewer replicas here',
        );
      this.creating++;
    });
    this.hostSlotQueue = turn.catch(() => undefined);
    await turn;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.creating--;
      // Counted as made whether it succeeded or not: a failed one only makes the next check recount sooner.
      if (this.hostCount) this.hostCount.since++;
    };
  }

  /**
   * dockerode's image inspect drops its options (no abort signal reaches the request), so dial the
   * same route through its modem, which honours abortSignal.
   */
  private inspectImage(name: string, signal: AbortSignal): Promise<Docker.ImageInspectInfo> {
    return new Promise((resolve, reject) => {
      this.docker.modem.dial(
        { path: `/images/${name}/json`, method: 'GET', abortSignal: signal, statusCodes: { 200: true, 404: 'no such image', 500: 'server error' } },
        (err: unknown, data: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(data as Docker.ImageInspectInfo)),
      );
    });
  }

  /** The clean-up's own deadline: the restore's may be spent already, and a hung Docker must not hold it forever. */
  private cleanupDeadline(what: string): { signal: AbortSignal; dispose: () => void } {
    return withDeadline(
      this.clock,
      this.cleanupTimeoutMs,
      () => new EngineError('EngineUnavailable', `${what} did not finish within ${this.cleanupTimeoutMs} ms; the next sweep retries it`),
    );
  }

  /** Remove a container this engine just made (never anyone else's), its copies, retrying if Docker is busy. */
  private async discard(containerId: string): Promise<void> {
    const deadline = this.cleanupDeadline(`removing the half-made container ${containerId.slice(0, 12)}`);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.call('removing a half-made container', deadline.signal, (s) =>
            this.docker.getContainer(containerId).remove({ force: true, v: true, abortSignal: s }),
          );
          break;
        } catch (err) {
          if (isNoSuchContainer(err)) break;
          // "removal already in progress" or a restore still finishing on the daemon: try again shortly.
          if (attempt >= 5 || deadline.signal.aborted || classifyError(err, { operation: 'remove' }).code === 'EngineUnavailable') {
            this.pendingRemovals.set(containerId, errorShape(err).message);
            break;
          }
          await this.clock.sleep(backoffDelay(DISCARD_RETRY, attempt), deadline.signal).catch(() => undefined);
        }
      }
    } finally {
      deadline.dispose();
    }
    await fs.rm(path.join(this.options.dockerRoot, 'containers', containerId, 'checkpoints'), { recursive: true, force: true }).catch(() => undefined);
    await this.reclaimCopiesOf(containerId);
  }

  private async removeIfOurs(name: string, ownerUid: string): Promise<void> {
    const deadline = this.cleanupDeadline(`looking for the container ${name} of a create cut short`);
    try {
      const info = await this.call('inspecting a container of a create cut short', deadline.signal, (s) =>
        this.docker.getContainer(name).inspect({ abortSignal: s }),
      );
      if (info.Config.Labels?.[OWNER_UID] === ownerUid) await this.discard(info.Id);
    } catch {
      // Not there (the create never happened) or Docker unreachable (the reconciler's inventory finds it later).
    } finally {
      deadline.dispose();
    }
  }

  /** Hygiene found something named like ours that it cannot prove it made: counted and logged, never touched. */
  private readonly onIgnored = (path: string, reason: HygieneIgnoredReason): void => {
    this.emit({ type: 'hygiene.ignored', reason, path, at: this.clock.now() });
  };

  private async reclaimCopiesOf(containerId: string): Promise<number> {
    let bytes = 0;
    let paths = 0;
    for (const dir of await findCopiesOf(this.options.containerdTmp, containerId, this.onIgnored)) {
      bytes += await removeFolder(dir, this.onIgnored).catch(() => 0);
      paths++;
    }
    if (paths > 0) this.emit({ type: 'hygiene.reclaimed', bytes, paths, at: this.clock.now() });
    return bytes;
  }

  // ---------------------------------------------------------------- removal

  async removeReplica(ownerUid: string, containerId: string, signal?: AbortSignal): Promise<void> {
    if (!ownerUid) throw new EngineError('InvalidSpec', 'ownerUid: is empty');
    const container = this.docker.getContainer(containerId);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.call(`inspecting container ${containerId} before removal`, signal, (s) => container.inspect({ abortSignal: s }));
    } catch (err) {
      if (isNoSuchContainer(err)) return; // already gone: removal is idempotent
      throw this.toEngineError(err, { operation: `inspecting container ${containerId} before removal` }, signal);
    }
    const labels = info.Config.Labels ?? {};
    const actual = labels[OWNER_UID];
    if (actual !== ownerUid)
      throw new EngineError(
        'InvalidSpec',
        `refusing to remove container ${info.Name.replace(/^\//, '')} (${info.Id.slice(0, 12)}): it ${actual ? `belongs to owner uid ${actual}` : 'carries no owner label'}, not to ${ownerUid}`,
      );
    // The template's stopGracePeriodSeconds, recorded on the container at create; else the agent's default.
    // (dockerode's inspect type lacks StopTimeout, which Docker returns when it was set.)
    const grace = (info.Config as { StopTimeout?: number }).StopTimeout ?? this.options.stopTimeoutSeconds ?? 10;
    try {
      await this.call(
        `stopping replica container ${info.Id.slice(0, 12)}`,
        signal,
        (s) => container.stop({ t: grace, abortSignal: s }),
        grace * 1000 + this.callTimeoutMs,
      );
    } catch (err) {
      if (!isNotModified(err) && !isNoSuchContainer(err)) {
        const e = this.toEngineError(err, { operation: `stopping replica container ${info.Id.slice(0, 12)}` }, signal);
        if (e.code === 'EngineUnavailable' || e.code === 'Aborted') throw e;
        // Otherwise (e.g. a dead container that cannot be stopped) fall through to the forced removal.
      }
    }
    try {
      await this.call(`removing replica container ${info.Id.slice(0, 12)}`, signal, (s) => container.remove({ force: true, v: true, abortSignal: s }));
    } catch (err) {
      if (!isNoSuchContainer(err)) throw this.toEngineError(err, { operation: `removing replica container ${info.Id.slice(0, 12)}` }, signal);
    }
    await fs.rm(path.join(this.options.dockerRoot, 'containers', info.Id, 'checkpoints'), { recursive: true, force: true }).catch(() => undefined);
    await this.reclaimCopiesOf(info.Id);
    this.pendingRemovals.delete(info.Id);
    const owner: ReplicaOwner | { uid: string } =
      labels[OWNER_NAMESPACE] && labels[OWNER_NAME] ? { uid: ownerUid, namespace: labels[OWNER_NAMESPACE], name: labels[OWNER_NAME] } : { uid: ownerUid };
    this.emit({ type: 'replica.removed', owner, containerId: info.Id, at: this.clock.now() });
  }

  // ---------------------------------------------------------------- hygiene

  /**
   * Reclaim leaked ctrd-checkpoint copies whose marker names one of our replicas and whose restore is
   * over: the container is gone, or it exists with that owner and is past its start. Copies of
   * restores in flight (here or in another engine process) are left alone.
   */
  async sweep(signal?: AbortSignal): Promise<number> {
    for (const containerId of [...this.pendingRemovals.keys()]) {
      try {
        await this.call('removing a container a failed restore left', signal, (s) =>
          this.docker.getContainer(containerId).remove({ force: true, v: true, abortSignal: s }),
        );
        this.pendingRemovals.delete(containerId);
      } catch (err) {
        if (isNoSuchContainer(err)) this.pendingRemovals.delete(containerId);
        else if (signal?.aborted) throw abortedError(signal);
        // Docker does not answer: one deadline per sweep is enough, the next sweep tries again.
        else if (classifyError(err, { operation: 'remove' }).code === 'EngineUnavailable') break;
      }
    }
    let bytes = 0;
    let paths = 0;
    // containerd's leaked unpacked copies, and our own copies in Docker's data root that an agent
    // killed between a restore's start and the copy's removal left behind.
    const copies = [...(await findMarkedCopies(this.options.containerdTmp, this.onIgnored)), ...(await findReplicaCopies(this.options.dockerRoot))];
    for (const copy of copies) {
      if (signal?.aborted) throw abortedError(signal);
      if (this.active.has(copy.containerId)) continue;
      if (copy.marker && copy.marker.node !== this.options.node) continue;
      if (!(await this.restoreIsOver(copy.containerId, copy.marker?.ownerUid, signal))) continue;
      bytes += await removeFolder(copy.dir, this.onIgnored).catch(() => 0);
      paths++;
    }
    if (paths > 0) this.emit({ type: 'hygiene.reclaimed', bytes, paths, at: this.clock.now() });
    return bytes;
  }

  /**
   * Whether the restore of `containerId` is over, so its checkpoint copies serve nothing: the container
   * is gone, or it carries our owner label (the marker's, when readable) and is past 'created'. A
   * container still 'created' may be mid-restore in another engine process: left alone.
   */
  private async restoreIsOver(containerId: string, ownerUid: string | undefined, signal?: AbortSignal): Promise<boolean> {
    try {
      const info = await this.call('sweeping leaked checkpoint copies', signal, (s) => this.docker.getContainer(containerId).inspect({ abortSignal: s }));
      const owner = info.Config.Labels?.[OWNER_UID];
      return owner !== undefined && (ownerUid === undefined || owner === ownerUid) && info.State.Status !== 'created';
    } catch (err) {
      if (isNoSuchContainer(err)) return true;
      throw this.toEngineError(err, { operation: 'sweeping leaked checkpoint copies' }, signal);
    }
  }

  /** Containers a failed restore could not remove yet (the engine was unreachable); sweep() retries them. */
  get pendingRemovalIds(): string[] {
    return [...this.pendingRemovals.keys()];
  }

  async close(): Promise<void> {
    this.closing.abort(new EngineError('Aborted', 'the restore engine is closing (agent shutdown)'));
    await Promise.allSettled([...this.watches].map((stop) => stop()));
    await Promise.allSettled([...this.running]);
  }
}

/**
 * Start options for a restore. `start({ checkpoint })` makes dockerode send the options as the request
 * body too, which Docker refuses (HTTP 400 "starting container with non-empty request body was
 * deprecated"); docker-modem sends `_query` as the query string and `_body` as the body instead.
 * The dockerode types do not know `_query`/`_body`, hence the cast.
 */
export function checkpointStartOptions(checkpoint: string, signal?: AbortSignal): Docker.ContainerStartOptions {
  const options: Record<string, unknown> = { _query: { checkpoint }, _body: {}, ...(signal ? { abortSignal: signal } : {}) };
  return options as Docker.ContainerStartOptions;
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}

/**
 * Messages end up in the tenant's status and Events: they name the error code, not the host paths
 * in Docker's data root or in the checkpoint folder (the cause keeps those for the agent's logs).
 */
function placementError(err: unknown, what: string): EngineError {
  if (err instanceof EngineError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  if (code === 'ENOSPC')
    return new EngineError('DiskFull', `${what}: no space left to place the replica's checkpoint copy (${code}); free disk on the Docker data root`, {
      cause: err,
    });
  if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM')
    return new EngineError(
      'InvalidSpec',
      `${what}: cannot write the replica's checkpoint copy (${code}); the agent needs write access to Docker's data root (run it as root, on the right --docker-root)`,
      { cause: err },
    );
  if (code === 'ENOENT')
    return new EngineError('CheckpointNotFound', `${what}: a checkpoint file vanished while it was being placed (${code}); was the checkpoint deleted?`, {
      cause: err,
    });
  return new EngineError('Unknown', `${what}: placing the replica's checkpoint copy failed (${code})`, { cause: err });
}

/** An inspected container's published ports in the shape of a container list entry. */
function inspectPorts(info: Docker.ContainerInspectInfo): Docker.Port[] {
  const out: Docker.Port[] = [];
  for (const [key, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
    const [port, type] = key.split('/');
    for (const b of bindings ?? []) out.push({ IP: b.HostIp, PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: type ?? 'tcp' });
  }
  return out;
}

/** The host's replica count from the last list, the creates finished since, and when it was listed. */
export interface HostCount {
  listed: number;
  since: number;
  at: number;
}

/** How old a host count may get before a create lists the host again (containers made or removed by hand). */
const HOST_COUNT_MAX_AGE_MS = 30_000;

/**
 * Whether a create must list the host's replicas before the cap check. The estimate (listed + made
 * since + in flight) only errs high (removals are not subtracted), so below the cap it is safe to
 * trust; at the cap it must be confirmed by a list, and it is refreshed anyway once it is old.
 */
export function mustRecount(count: HostCount | undefined, cap: number, creating: number, now: number): boolean {
  if (!count) return true; // never listed
  if (now - count.at >= HOST_COUNT_MAX_AGE_MS) return true; // what others did on the host is seen this often
  return count.listed + count.since + creating >= cap; // at the cap only an exact count may refuse
}
