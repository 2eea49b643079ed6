// Writes THIS node's entry of status.nodes, for many resources, without a write storm and without
// clobbering other nodes, at 100 nodes on one resource (docs/benchmarks.md, "Status at 100 nodes"):
//  - reports are coalesced per resource: the latest entry wins, written after a debounce window
//    (250 ms default) and at most once per second per resource (minIntervalMs), one write in flight;
//    with many nodes on one resource, at most once per nodeCount x perNodeIntervalMs (50 ms default;
//    nodeCount is the number of entries the last answer held), so all agents together write about
//    1000 / perNodeIntervalMs rounds a second to one object whatever the node count (the apiserver
//    serializes writes to one object; docs/benchmarks.md "Status at 100 nodes: paced");
//  - the entry is written by server-side apply under this node's own field manager
//    (`crs-agent/<node>`, force): status.nodes is a list-map keyed by node, so the apiserver merges
//    entries and nodes never conflict with each other (no read-modify-write, no 409 storm);
//  - the summary (sums, conditions, nodeCount, observedGeneration) is derived from the entries the
//    apply answered with and applied under the one shared manager `crs-controller`, conditional on
//    that answer's resourceVersion. A 409 there means another write landed after ours; that write's
//    own summary (derived from entries that include ours) is the one that must land, so ours is
//    dropped, not retried. The last entry write is therefore always followed by a summary derived
//    from the final entries: the summary cannot stay stale while its writer lives;
//  - nothing is written when the entry equals the one this writer last wrote (re-checked against
//    the stored object every refreshMs, and after any failure);
//  - removing this node's entry (rare: the node stopped matching) reads, merges and PUTs with the
//    resourceVersion read, retrying 409s, since an update may remove fields any manager owns;
//  - failures other than "the resource is gone" keep the entry pending and retry later with backoff.
// report() resolves once its entry is stored (or found unchanged, or the resource is gone, or the
// write failed and a background retry is scheduled); it never rejects for API errors.

import { CONDITION_TYPES } from '../api/schema.js';
import type { CheckpointReplicaSet, NodeStatus } from '../api/types.js';
import { aggregate, normaliseEntry, removeNodeStatus, sameStatus, summaryFields } from './aggregate.js';
import { ApiError, isApiError } from './api-error.js';
import { backoffDelay, validateBackoff, type BackoffPolicy } from '../backoff.js';
import { nodeHash } from './finalizers.js';
import type { CrsClient } from './client.js';
import { realClock, sleep, type Clock, type TimerHandle } from './clock.js';
import { noopLogger, type Logger } from './logger.js';
import { canonicalJson, keyOf, type ResourceRef, type StatusPort } from '../vocabulary.js';

export interface StatusWriterOptions {
  client: Pick<CrsClient, 'get' | 'replaceStatus' | 'applyStatus'>;
  /** This agent's node name: the only entry of status.nodes it writes. */
  node: string;
  /** Coalescing window per resource. Default 250 ms. */
  debounceMs?: number;
  /** Least time between two write rounds of one resource. Default 1000 ms. */
  minIntervalMs?: number;
  /** Per node on the resource, least time between two rounds (see roundInterval). Default 50 ms. */
  perNodeIntervalMs?: number;
  /** An unchanged entry is compared with the stored object again after this long. Default 60 s. */
  refreshMs?: number;
  /** Re-read-and-retry rounds after 409 Conflict within one write. Default 8. */
  maxConflictRetries?: number;
  /** Pause between conflict retries. Default 50 ms doubling to 2 s, 50 % jitter. */
  conflictBackoff?: BackoffPolicy;
  /** Pause before retrying a write that failed otherwise (apiserver away). Default 1 s to 60 s. */
  retryBackoff?: BackoffPolicy;
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
}

export interface StatusWriterStats {
  /** Successful writes of /status (entry applies, summary applies and PUTs). */
  writes: number;
  /** Of those, summary applies. */
  summaryWrites: number;
  /** Write rounds that found nothing to change. */
  unchanged: number;
  /** 409 Conflicts: a removal's PUT re-read, or a summary superseded by a later write (dropped). */
  conflicts: number;
  /** Write rounds that failed (and were rescheduled). */
  failures: number;
  /** Reports dropped because the resource is gone or was replaced (another uid). */
  dropped: number;
}

export class InvalidNodeStatusError extends Error {
  readonly code = 'InvalidNodeStatus';
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`status report: ${field} ${reason}`);
  }
}

type Change = { kind: 'set'; entry: NodeStatus } | { kind: 'remove' };

interface Pending {
  ref: ResourceRef;
  change: Change;
  waiters: Array<() => void>;
}

/** The entry this writer last stored for a resource, to skip writing it again. */
interface Written {
  uid: string;
  json: string;
  entry: NodeStatus;
  at: number;
}

interface KeyState {
  pending?: Pending;
  timer?: TimerHandle;
  inFlight?: Promise<void>;
  failures: number;
  /** When the last write round started (clock ms), for minIntervalMs. */
  lastRoundAt?: number;
  /** How many entries status.nodes held in the last object read or written, for roundInterval. */
  nodeCount?: number;
  written?: Written;
}

const DEFAULT_STATUS_DEBOUNCE_MS = 250;
const DEFAULT_STATUS_MIN_INTERVAL_MS = 1000;
const DEFAULT_STATUS_PER_NODE_INTERVAL_MS = 50;

/**
 * Least time between two write rounds of one resource by one agent: minIntervalMs, stretched to
 * nodeCount x perNodeMs, because every node's rounds land on the same object and the apiserver
 * serializes them; this caps the object at ~1000 / perNodeMs rounds a second at any node count.
 */
export function roundInterval(minIntervalMs: number, perNodeMs: number, nodeCount: number): number {
  return Math.max(minIntervalMs, nodeCount * perNodeMs);
}
/** The one field manager of the summary fields, shared by every agent. */
const SUMMARY_FIELD_MANAGER = 'crs-controller';

/**
 * The field manager of `node`'s entry: `crs-agent/<node>`, or (the apiserver allows 128
 * characters, node names may have 253) a readable prefix plus a hash of the full name.
 */
export function entryFieldManager(node: string): string {
  const plain = `crs-agent/${node}`;
  return plain.length <= 128 ? plain : `crs-agent/${node.slice(0, 100)}-${nodeHash(node)}`;
}

export class StatusWriter implements StatusPort {
  readonly node: string;
  private readonly client: Pick<CrsClient, 'get' | 'replaceStatus' | 'applyStatus'>;
  private readonly fieldManager: string;
  private readonly debounceMs: number;
  private readonly minIntervalMs: number;
  private readonly perNodeIntervalMs: number;
  private readonly refreshMs: number;
  private readonly maxConflictRetries: number;
  private readonly conflictBackoff: BackoffPolicy;
  private readonly retryBackoff: BackoffPolicy;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly random: () => number;
  private readonly keys = new Map<string, KeyState>();
  private readonly stats_: StatusWriterStats = { writes: 0, summaryWrites: 0, unchanged: 0, conflicts: 0, failures: 0, dropped: 0 };
  private stopped = false;

  constructor(options: StatusWriterOptions) {
    if (!options.node) throw new RangeError('status writer: node must not be empty');
    this.node = options.node;
    this.client = options.client;
    this.fieldManager = entryFieldManager(options.node);
    this.debounceMs = options.debounceMs ?? DEFAULT_STATUS_DEBOUNCE_MS;
    if (!(this.debounceMs >= 0)) throw new RangeError(`status writer: debounceMs must be >= 0, got ${this.debounceMs}`);
    this.minIntervalMs = options.minIntervalMs ?? DEFAULT_STATUS_MIN_INTERVAL_MS;
    if (!(this.minIntervalMs >= 0)) throw new RangeError(`status writer: minIntervalMs must be >= 0, got ${this.minIntervalMs}`);
    this.perNodeIntervalMs = options.perNodeIntervalMs ?? DEFAULT_STATUS_PER_NODE_INTERVAL_MS;
    if (!(this.perNodeIntervalMs >= 0)) throw new RangeError(`status writer: perNodeIntervalMs must be >= 0, got ${this.perNodeIntervalMs}`);
    this.refreshMs = options.refreshMs ?? 60_000;
    if (!(this.refreshMs >= 0)) throw new RangeError(`status writer: refreshMs must be >= 0, got ${this.refreshMs}`);
    this.maxConflictRetries = options.maxConflictRetries ?? 8;
    if (!(Number.isInteger(this.maxConflictRetries) && this.maxConflictRetries >= 0)) {
      throw new RangeError(`status writer: maxConflictRetries must be an integer >= 0, got ${this.maxConflictRetries}`);
    }
    this.conflictBackoff = options.conflictBackoff ?? { initialMs: 50, maxMs: 2000, jitter: 0.5 };
    validateBackoff(this.conflictBackoff, 'status writer: conflictBackoff');
    this.retryBackoff = options.retryBackoff ?? { initialMs: 1000, maxMs: 60_000, jitter: 0.2 };
    validateBackoff(this.retryBackoff, 'status writer: retryBackoff');
    this.clock = options.clock ?? realClock;
    this.logger = options.logger ?? noopLogger;
    this.random = options.random ?? Math.random;
  }

  report(ref: ResourceRef, entry: NodeStatus): Promise<void> {
    try {
      validateRef(ref);
      validateEntry(entry, this.node);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const normalised: NodeStatus = { ...entry, observedGeneration: entry.observedGeneration ?? ref.generation };
    return this.enqueue(ref, { kind: 'set', entry: normalised });
  }

  /** Removes this node's entry (e.g. the node no longer matches spec.nodeSelector). */
  remove(ref: ResourceRef): Promise<void> {
    try {
      validateRef(ref);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.enqueue(ref, { kind: 'remove' });
  }

  /**
   * Writes everything pending now (skipping the debounce) and waits for it: one round per resource
   * (a round that fails is left to its background retry, so this cannot spin on a dead apiserver).
   */
  async flush(): Promise<void> {
    const flushed = new Set<string>();
    for (;;) {
      const rounds: Array<Promise<void>> = [];
      for (const [key, state] of this.keys) {
        if (state.inFlight) {
          rounds.push(state.inFlight);
        } else if (state.pending && !flushed.has(key)) {
          flushed.add(key);
          if (state.timer) {
            this.clock.clearTimeout(state.timer);
            state.timer = undefined;
          }
          rounds.push(this.writeRound(key));
        }
      }
      if (rounds.length === 0) return;
      await Promise.all(rounds);
    }
  }

  /** Flushes once more, then stops: later reports resolve at once without writing. */
  async stop(): Promise<void> {
    await this.flush();
    this.stopped = true;
    for (const state of this.keys.values()) {
      if (state.timer) this.clock.clearTimeout(state.timer);
      for (const resolve of state.pending?.waiters ?? []) resolve();
    }
    this.keys.clear();
  }

  stats(): Readonly<StatusWriterStats> {
    return { ...this.stats_ };
  }

  private enqueue(ref: ResourceRef, change: Change): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const key = keyOf(ref.namespace, ref.name);
    let state = this.keys.get(key);
    if (!state) {
      state = { failures: 0 };
      this.keys.set(key, state);
    }
    return new Promise<void>((resolve) => {
      const s = state as KeyState;
      // The latest report wins; everyone who asked is told when it has been written.
      s.pending = { ref, change, waiters: [...(s.pending?.waiters ?? []), resolve] };
      this.schedule(key, s, this.debounceMs);
    });
  }

  private schedule(key: string, state: KeyState, delayMs: number): void {
    if (state.timer || state.inFlight || this.stopped) return; // the running round reschedules
    // At most one round per interval: reports in between are coalesced into the next one.
    const sinceLast = state.lastRoundAt === undefined ? Infinity : this.clock.now() - state.lastRoundAt;
    delayMs = Math.max(delayMs, roundInterval(this.minIntervalMs, this.perNodeIntervalMs, state.nodeCount ?? 0) - sinceLast);
    state.timer = this.clock.setTimeout(() => {
      state.timer = undefined;
      void this.writeRound(key);
    }, delayMs);
  }

  /** One write round for a key: takes what is pending and writes it (retrying conflicts). */
  private writeRound(key: string): Promise<void> {
    const state = this.keys.get(key);
    if (!state || state.inFlight || !state.pending) return state?.inFlight ?? Promise.resolve();
    const pending = state.pending;
    state.pending = undefined;
    state.lastRoundAt = this.clock.now();
    const round = (async () => {
      try {
        const outcome = await this.write(pending, state);
        state.failures = 0;
        if (outcome === 'unchanged') this.stats_.unchanged++;
        else if (outcome === 'gone') this.stats_.dropped++;
      } catch (err) {
        // What is stored is unknown now (entry or summary): the retry compares with a fresh read.
        state.written = undefined;
        state.failures++;
        this.stats_.failures++;
        const apiErr = err instanceof ApiError ? err : undefined;
        this.logger.warn('status write failed; will retry', {
          resource: key,
          node: this.node,
          code: apiErr?.code ?? (err as { code?: unknown } | null)?.code,
          error: err instanceof Error ? err.message : String(err),
          failures: state.failures,
        });
        // Keep the data for the retry unless a newer report superseded it meanwhile.
        if (!state.pending) state.pending = { ...pending, waiters: [] };
      } finally {
        for (const resolve of pending.waiters) resolve();
        state.inFlight = undefined;
      }
      if (state.pending) {
        const delay = state.failures > 0 ? backoffDelay(this.retryBackoff, state.failures, this.random) : this.debounceMs;
        this.schedule(key, state, delay);
      } else if (!state.timer && !state.written) {
        this.keys.delete(key);
      }
    })();
    state.inFlight = round;
    return round;
  }

  private async write(pending: Pending, state: KeyState): Promise<'written' | 'unchanged' | 'gone'> {
    const { ref, change } = pending;
    if (change.kind === 'remove') {
      state.written = undefined;
      return this.removeEntry(ref, this.node);
    }
    const now = new Date(this.clock.now());
    const fresh = state.written?.uid === ref.uid && this.clock.now() - state.written.at < this.refreshMs ? state.written : undefined;
    if (fresh && fresh.json === canonicalJson(normaliseEntry(fresh.entry, change.entry, now))) return 'unchanged';
    // Nothing known (first write, a failure, refresh due): compare with what is stored.
    let stored: CheckpointReplicaSet | undefined;
    if (!fresh) {
      try {
        stored = await this.client.get(ref.namespace, ref.name);
      } catch (err) {
        if (isApiError(err, 'NotFound')) return 'gone';
        throw err;
      }
      // Same name, new object: this report was about the deleted one.
      if (stored.metadata.uid !== ref.uid) return 'gone';
      state.nodeCount = stored.status?.nodes?.length;
    }
    const previous = fresh?.entry ?? stored?.status?.nodes?.find((n) => n.node === this.node);
    const entry = normaliseEntry(previous, change.entry, now);
    const json = canonicalJson(entry);
    let answer: CheckpointReplicaSet;
    if (stored && previous && canonicalJson(previous) === json) {
      answer = stored; // the entry is stored as it is; only the summary may need writing
    } else {
      try {
        answer = await this.client.applyStatus({
          namespace: ref.namespace,
          name: ref.name,
          fieldManager: this.fieldManager,
          status: { nodes: [entry] },
        });
      } catch (err) {
        if (isApiError(err, 'NotFound')) return 'gone';
        throw err;
      }
      this.stats_.writes++;
      // The apiserver does not check a uid on a status apply: the answer tells whose it was.
      if (answer.metadata.uid !== ref.uid) return 'gone';
      state.nodeCount = answer.status?.nodes?.length;
    }
    state.written = { uid: ref.uid, json, entry, at: this.clock.now() };
    const summaryWritten = await this.writeSummary(ref, answer, now);
    return answer === stored && !summaryWritten ? 'unchanged' : 'written';
  }

  /**
   * Applies the summary derived from `seen`'s entries, conditional on `seen`'s resourceVersion.
   * A 409 means a later write exists, whose writer derives the summary from newer entries: dropped.
   */
  private async writeSummary(ref: ResourceRef, seen: CheckpointReplicaSet, now: Date): Promise<boolean> {
    const identity = { uid: ref.uid, generation: seen.metadata.generation ?? ref.generation };
    const next = aggregate(seen.status, seen.status?.nodes ?? [], identity, now);
    if (sameStatus(summaryFields(seen.status ?? {}), summaryFields(next))) return false;
    try {
      await this.client.applyStatus({
        namespace: ref.namespace,
        name: ref.name,
        fieldManager: SUMMARY_FIELD_MANAGER,
        status: summaryFields(next) as Record<string, unknown>,
        ...(seen.metadata.resourceVersion ? { resourceVersion: seen.metadata.resourceVersion } : {}),
      });
      this.stats_.writes++;
      this.stats_.summaryWrites++;
      return true;
    } catch (err) {
      if (isApiError(err, 'NotFound')) return false;
      if (!isApiError(err, 'Conflict')) throw err;
      this.stats_.conflicts++;
      this.logger.debug('summary superseded by a later write', { resource: keyOf(ref.namespace, ref.name), node: this.node });
      return false;
    }
  }

  /**
   * Removes a departed node's entry now (departed-nodes.ts: its Node is gone and its agent with it,
   * so nobody else ever will). Throws on API errors; the caller's next sweep retries.
   */
  removeDeparted(ref: ResourceRef, node: string): Promise<'written' | 'unchanged' | 'gone'> {
    if (node === this.node) return Promise.reject(new RangeError('status writer: removeDeparted is for other nodes; use remove()'));
    return this.removeEntry(ref, node);
  }

  /** Removes `node`'s entry: read, merge, PUT with the resourceVersion read; 409 re-reads. */
  private async removeEntry(ref: ResourceRef, node: string): Promise<'written' | 'unchanged' | 'gone'> {
    for (let attempt = 0; ; attempt++) {
      let obj: CheckpointReplicaSet;
      try {
        obj = await this.client.get(ref.namespace, ref.name);
      } catch (err) {
        if (isApiError(err, 'NotFound')) return 'gone';
        throw err;
      }
      if (obj.metadata.uid !== ref.uid) return 'gone';
      const identity = { uid: obj.metadata.uid, generation: obj.metadata.generation ?? ref.generation };
      const next = removeNodeStatus(obj.status, node, identity, new Date(this.clock.now()));
      if (sameStatus(obj.status, next)) return 'unchanged';
      try {
        await this.client.replaceStatus({ ...obj, status: next });
        this.stats_.writes++;
        return 'written';
      } catch (err) {
        if (isApiError(err, 'NotFound')) return 'gone';
        if (!isApiError(err, 'Conflict') || attempt >= this.maxConflictRetries) throw err;
        this.stats_.conflicts++;
        this.logger.debug('status write conflicted; re-reading', {
          resource: keyOf(ref.namespace, ref.name),
          node,
          attempt: attempt + 1,
        });
        await sleep(this.clock, backoffDelay(this.conflictBackoff, attempt + 1, this.random));
      }
    }
  }
}

function validateRef(ref: ResourceRef): void {
  for (const field of ['namespace', 'name', 'uid'] as const) {
    if (typeof ref[field] !== 'string' || ref[field] === '') {
      throw new InvalidNodeStatusError(`ref.${field}`, 'must be a non-empty string');
    }
  }
  if (!Number.isInteger(ref.generation) || ref.generation < 0) {
    throw new InvalidNodeStatusError('ref.generation', `must be an integer >= 0, got ${String(ref.generation)}`);
  }
}

function validateEntry(entry: NodeStatus, node: string): void {
  if (entry.node !== node) {
    throw new InvalidNodeStatusError(
      'node',
      `must be this agent's node ${JSON.stringify(node)}, got ${JSON.stringify(entry.node)}: an agent writes only its own entry`,
    );
  }
  for (const field of ['replicas', 'readyReplicas', 'restoringReplicas', 'failedReplicas', 'coldStartedReplicas'] as const) {
    const v = entry[field];
    if (v === undefined && field === 'coldStartedReplicas') continue;
    if (!Number.isInteger(v) || (v as number) < 0) {
      throw new InvalidNodeStatusError(field, `must be an integer >= 0, got ${String(v)}`);
    }
  }
  if (entry.observedGeneration !== undefined && !(Number.isInteger(entry.observedGeneration) && entry.observedGeneration >= 0)) {
    throw new InvalidNodeStatusError('observedGeneration', `must be an integer >= 0, got ${entry.observedGeneration}`);
  }
  for (const [i, c] of (entry.conditions ?? []).entries()) {
    if (!(CONDITION_TYPES as readonly string[]).includes(c.type)) {
      throw new InvalidNodeStatusError(`conditions[${i}].type`, `must be one of ${CONDITION_TYPES.join(', ')}, got ${JSON.stringify(c.type)}`);
    }
    if (!['True', 'False', 'Unknown'].includes(c.status)) {
      throw new InvalidNodeStatusError(`conditions[${i}].status`, `must be True, False or Unknown, got ${JSON.stringify(c.status)}`);
    }
    if (!c.reason) throw new InvalidNodeStatusError(`conditions[${i}].reason`, 'must not be empty');
  }
}
