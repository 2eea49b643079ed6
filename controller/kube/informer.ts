// A resilient informer over client-node's ListWatch. client-node's ListWatch lists, watches, keeps a
// cache and re-lists after a 410 Gone, but on any other error (apiserver restarting, connection
// reset, list failing) it emits "error" and stops for good, and it has no resync. This wrapper:
//  - restarts after any error with capped, jittered exponential backoff (resuming the watch from the
//    last resourceVersion; ListWatch itself re-lists when that answers 410 Gone);
//  - asks the apiserver to end each watch after watchTimeoutSeconds and aborts a watch that stays
//    silent past that deadline, so a half-open connection cannot freeze the cache forever;
//  - re-emits every cached object every resyncPeriodMs, so a missed or failed reconcile is retried;
//  - tells when the first list has been delivered (hasSynced / waitForSync, for /readyz);
//  - caches objects without metadata.managedFields and kubectl's last-applied-configuration
//    annotation (slim): nothing in the agent reads them, and with 1000 resources they were most of
//    the cache's memory.

import { CoreV1Api, ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1Node } from '@kubernetes/client-node';
import type { CheckpointReplicaSet } from '../api/types.js';
import { toApiError } from './api-error.js';
import { backoffDelay, validateBackoff, type BackoffPolicy } from '../backoff.js';
import { createCrsClient, crsPath } from './client.js';
import { realClock, type Clock, type TimerHandle } from './clock.js';
import { noopLogger, type Logger } from './logger.js';

/** The part of client-node's Watch that ListWatch uses; the real Watch satisfies it. */
export interface WatchLike {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    // client-node types watch events as `any`: they are JSON from the wire, checked by ListWatch.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    done: (err: any) => void,
  ): Promise<AbortController>;
}

export type UpdateCause = 'watch' | 'resync';

/** kubectl apply's copy of the whole manifest: as large as the object, never read by the agent. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * The object as cached: without managedFields and the last-applied annotation (in place; the
 * object is fresh from the wire). Why: they double an object's size and the agent never reads them.
 */
function slim<T>(obj: T): T {
  const metadata = (obj as { metadata?: { managedFields?: unknown; annotations?: Record<string, string> } } | undefined)?.metadata;
  if (!metadata) return obj;
  delete metadata.managedFields;
  if (metadata.annotations && LAST_APPLIED in metadata.annotations) {
    delete metadata.annotations[LAST_APPLIED];
    if (Object.keys(metadata.annotations).length === 0) delete metadata.annotations;
  }
  return obj;
}

/** What the informer needs of an object: its identity and version (timestamps stay JSON strings). */
export interface WatchedObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string };
}

export interface InformerHandlers<T> {
  add?(obj: T): void;
  /** A changed object from the watch, or every cached object again at each resync. */
  update?(obj: T, cause: UpdateCause): void;
  delete?(obj: T): void;
}

export interface InformerOptions<T extends WatchedObject> {
  /** For logs, e.g. "checkpointreplicasets". */
  name: string;
  /** The collection's URL path, e.g. /apis/checkpoint.dev/v1alpha1/checkpointreplicasets. */
  path: string;
  list: () => Promise<{ metadata?: { resourceVersion?: string }; items: T[] }>;
  watch: WatchLike;
  labelSelector?: string;
  fieldSelector?: string;
  /** Re-emit every cached object this often; 0 turns resync off. Default 5 min. */
  resyncPeriodMs?: number;
  /** Delay before restarting after an error. Default 1 s doubling to 60 s, 20 % jitter. */
  restartBackoff?: BackoffPolicy;
  /** The apiserver ends each watch after this long (ListWatch then resumes it). Default 300 s. */
  watchTimeoutSeconds?: number;
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
}

const DEFAULT_RESYNC_PERIOD_MS = 5 * 60_000;
const DEFAULT_RESTART_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 60_000, factor: 2, jitter: 0.2 };
const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
/** How long past the server-side timeout a watch may stay open before it is deemed dead. */
const WATCH_DEADLINE_GRACE_MS = 30_000;

export interface InformerStats {
  /** Lists started (the first one, and every re-list after 410 Gone or an error before the first). */
  lists: number;
  /** Watches started (including ListWatch's own resumes after a watch timeout). */
  watches: number;
  /** Errors seen (each is followed by a restart after backoff unless stopped). */
  errors: number;
  /** Watches aborted because they outlived their deadline without ending. */
  deadlineAborts: number;
  /** Resync rounds done. */
  resyncs: number;
}

export class ResilientInformer<T extends WatchedObject> {
  readonly name: string;
  private readonly options: InformerOptions<T>;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly backoff: BackoffPolicy;
  private readonly resyncPeriodMs: number;
  private readonly watchTimeoutSeconds: number;
  // ListWatch is typed for client-node's models (Date timestamps); the objects are the wire JSON
  // either way, so it is held as ListWatch<KubernetesObject> and its objects are cast back to T.
  private readonly listWatch: ListWatch<KubernetesObject>;
  private readonly handlers: Array<InformerHandlers<T>> = [];

  private started = false;
  private stopped = false;
  private listedSinceSync = false;
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  private consecutiveErrors = 0;
  private restartTimer: TimerHandle | undefined;
  /** The open watch request. Tracked here too: ListWatch only learns it once watch() resolves. */
  private currentWatch: AbortController | undefined;
  private resyncTimer: TimerHandle | undefined;
  private readonly stats_: InformerStats = { lists: 0, watches: 0, errors: 0, deadlineAborts: 0, resyncs: 0 };

  constructor(options: InformerOptions<T>) {
    this.options = options;
    this.name = options.name;
    this.clock = options.clock ?? realClock;
    this.logger = options.logger ?? noopLogger;
    this.random = options.random ?? Math.random;
    this.backoff = options.restartBackoff ?? DEFAULT_RESTART_BACKOFF;
    validateBackoff(this.backoff, `informer ${options.name}: restartBackoff`);
    this.resyncPeriodMs = options.resyncPeriodMs ?? DEFAULT_RESYNC_PERIOD_MS;
    if (!(this.resyncPeriodMs >= 0)) {
      throw new RangeError(`informer ${options.name}: resyncPeriodMs must be >= 0 (0 = off), got ${this.resyncPeriodMs}`);
    }
    this.watchTimeoutSeconds = options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS;
    if (!(Number.isInteger(this.watchTimeoutSeconds) && this.watchTimeoutSeconds > 0)) {
      throw new RangeError(`informer ${options.name}: watchTimeoutSeconds must be a positive integer, got ${this.watchTimeoutSeconds}`);
    }

    // ListWatch calls the Watch it is given only through watch(); our wrapper adds the timeout,
    // bookmarks, the dead-connection deadline and the sync signal. The cast is needed because
    // ListWatch's constructor names the Watch class, not an interface.
    const watch = { watch: this.watchThrough.bind(this) } as unknown as Watch;
    this.listWatch = new ListWatch<KubernetesObject>(options.path, watch, this.listThrough.bind(this), false, options.labelSelector, options.fieldSelector);
    this.listWatch.on('add', (obj) => this.emit('add', obj as T));
    this.listWatch.on('update', (obj) => this.emit('update', obj as T));
    this.listWatch.on('delete', (obj) => this.emit('delete', obj as T));
    this.listWatch.on('error', (err) => this.onError(err));
  }

  /** Registers handlers; call before start() to see the initial adds. */
  on(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  /** Lists and starts watching; never rejects (errors are retried with backoff and logged). */
  start(): void {
    if (this.started) throw new Error(`informer ${this.name} is already started`);
    this.started = true;
    this.run();
    this.scheduleResync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) this.clock.clearTimeout(this.restartTimer);
    if (this.resyncTimer) this.clock.clearTimeout(this.resyncTimer);
    this.restartTimer = undefined;
    this.resyncTimer = undefined;
    await this.listWatch.stop();
    this.currentWatch?.abort();
    this.currentWatch = undefined;
    // Anyone waiting for a sync that will never come is released; they check hasSynced().
    this.releaseSyncWaiters();
  }

  /** True once the first complete list has been delivered to the handlers (stays true). */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves when hasSynced() becomes true, or when the informer is stopped. */
  waitForSync(): Promise<void> {
    if (this.synced || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(name: string, namespace?: string): T | undefined {
    return this.listWatch.get(name, namespace) as T | undefined;
  }

  list(namespace?: string): ReadonlyArray<T> {
    return this.listWatch.list(namespace) as ReadonlyArray<T>;
  }

  stats(): Readonly<InformerStats> {
    return { ...this.stats_ };
  }

  private run(): void {
    if (this.stopped) return;
    // start() resolves once the watch is open; a rejection here means the request could not even
    // be built (e.g. credentials failing), which is an error like any other.
    this.listWatch.start().catch((err: unknown) => this.onError(err));
  }

  private async listThrough(): Promise<KubernetesListObject<KubernetesObject>> {
    this.stats_.lists++;
    const list = await this.options.list();
    for (const item of list.items) slim(item);
    this.listedSinceSync = true;
    this.consecutiveErrors = 0;
    return list;
  }

  private async watchThrough(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- see WatchLike
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- see WatchLike
    done: (err: any) => void,
  ): Promise<AbortController> {
    // ListWatch opens the watch right after it has delivered a list: the cache is complete now.
    if (this.listedSinceSync && !this.synced) {
      this.synced = true;
      this.logger.info('informer synced', { informer: this.name, objects: this.listWatch.list().length });
      this.releaseSyncWaiters();
    }
    this.stats_.watches++;
    let controller: AbortController | undefined;
    let ended = false;
    const deadline = this.clock.setTimeout(
      () => {
        if (ended) return;
        this.stats_.deadlineAborts++;
        this.logger.warn('watch outlived its deadline; aborting it', { informer: this.name });
        controller?.abort();
      },
      this.watchTimeoutSeconds * 1000 + WATCH_DEADLINE_GRACE_MS,
    );
    controller = await this.options.watch.watch(
      path,
      { ...queryParams, timeoutSeconds: this.watchTimeoutSeconds, allowWatchBookmarks: true },
      (phase, obj, watchObj) => {
        // A delivered event proves the connection works: the next error starts a fresh backoff.
        if (phase !== 'ERROR') this.consecutiveErrors = 0;
        callback(phase, phase === 'ERROR' ? obj : slim(obj), watchObj);
      },
      (err) => {
        ended = true;
        this.clock.clearTimeout(deadline);
        done(err);
      },
    );
    if (ended) this.clock.clearTimeout(deadline);
    this.currentWatch = controller;
    // stop() may have run while the request was being opened; ListWatch would not abort it then.
    if (this.stopped) controller.abort();
    return controller;
  }

  private onError(err: unknown): void {
    if (this.stopped) return; // stop() aborts the watch, which reports an abort error: expected.
    this.stats_.errors++;
    if (this.restartTimer) return; // a restart is already scheduled
    this.consecutiveErrors++;
    const delay = backoffDelay(this.backoff, this.consecutiveErrors, this.random);
    const apiErr = toApiError(err, `list/watch ${this.name}`);
    this.logger.warn('list/watch failed; restarting after backoff', {
      informer: this.name,
      code: apiErr.code,
      status: apiErr.status,
      error: apiErr.message,
      consecutiveErrors: this.consecutiveErrors,
      delayMs: delay,
    });
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      this.run();
    }, delay);
  }

  private scheduleResync(): void {
    if (this.resyncPeriodMs === 0 || this.stopped) return;
    this.resyncTimer = this.clock.setTimeout(() => {
      this.resyncTimer = undefined;
      if (this.synced && !this.stopped) {
        this.stats_.resyncs++;
        for (const obj of this.listWatch.list()) this.emit('update', obj as T, 'resync');
      }
      this.scheduleResync();
    }, this.resyncPeriodMs);
  }

  private emit(kind: 'add' | 'update' | 'delete', obj: T, cause: UpdateCause = 'watch'): void {
    for (const h of this.handlers) {
      try {
        if (kind === 'add') h.add?.(obj);
        else if (kind === 'update') h.update?.(obj, cause);
        else h.delete?.(obj);
      } catch (err) {
        // A throwing handler must not break the cache or the other handlers.
        this.logger.error('informer handler threw', {
          informer: this.name,
          event: kind,
          object: `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  private releaseSyncWaiters(): void {
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

export type CommonInformerOptions = Pick<
  InformerOptions<KubernetesObject>,
  'resyncPeriodMs' | 'restartBackoff' | 'watchTimeoutSeconds' | 'clock' | 'logger' | 'random'
>;

/** CheckpointReplicaSets in every namespace, or in `namespace` only. */
export function createCrsInformer(
  kc: KubeConfig,
  options: CommonInformerOptions & { namespace?: string; watch?: WatchLike } = {},
): ResilientInformer<CheckpointReplicaSet> {
  const client = createCrsClient(kc);
  const { namespace, watch, ...common } = options;
  return new ResilientInformer<CheckpointReplicaSet>({
    ...common,
    name: namespace ? `checkpointreplicasets in ${namespace}` : 'checkpointreplicasets',
    path: crsPath(namespace),
    list: () => client.list(namespace),
    watch: watch ?? new Watch(kc),
  });
}

/** The agent's own Node object (its labels decide which resources select this node). */
export function createNodeInformer(kc: KubeConfig, nodeName: string, options: CommonInformerOptions & { watch?: WatchLike } = {}): ResilientInformer<V1Node> {
  if (!nodeName) throw new RangeError('node informer: nodeName must not be empty');
  const core = kc.makeApiClient(CoreV1Api);
  const fieldSelector = `metadata.name=${nodeName}`;
  const { watch, ...common } = options;
  return new ResilientInformer<V1Node>({
    ...common,
    name: `node ${nodeName}`,
    path: '/api/v1/nodes',
    fieldSelector,
    list: async () => {
      try {
        return await core.listNode({ fieldSelector });
      } catch (err) {
        throw toApiError(err, `list nodes ${fieldSelector}`);
      }
    },
    watch: watch ?? new Watch(kc),
  });
}
