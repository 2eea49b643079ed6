// This node's finalizer on a CheckpointReplicaSet: `checkpoint.dev/cleanup-<node>`. Each agent holds
// its own, so the resource stays until EVERY node that ran replicas has removed them. Changes are
// JSON patches that set metadata.resourceVersion to the one read: the apiserver then answers 409
// Conflict if anything changed since, and we re-read and retry. Other finalizers are never touched:
// the list written is the list read, plus or minus this node's entry.

import { createHash } from 'node:crypto';
import { GROUP, NODE_FINALIZER_PREFIX } from '../api/types.js';
import { isApiError } from './api-error.js';
import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import type { CrsClient, JsonPatchOp } from './client.js';
import { realClock, sleep, type Clock } from './clock.js';
import { noopLogger, type Logger } from './logger.js';
import type { FinalizerPort, ResourceRef } from '../vocabulary.js';

/** The name part of a qualified name (after the slash) is at most 63 characters. */
const MAX_NAME_PART = 63;

/**
 * The finalizer of `node`: `checkpoint.dev/cleanup-<node>` when that is a valid qualified name,
 * otherwise (node names may be 253 characters) a readable prefix plus a hash of the full name.
 */
export function finalizerFor(node: string): string {
  if (!node) throw new RangeError('finalizer: node name must not be empty');
  const namePart = `cleanup-${node}`;
  if (namePart.length <= MAX_NAME_PART && /^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/i.test(namePart)) return `${GROUP}/${namePart}`;
  const hash = nodeHash(node);
  const room = MAX_NAME_PART - 'cleanup-'.length - 1 - hash.length;
  const readable = node
    .slice(0, room)
    .replace(/[^-a-z0-9_.]/gi, '-')
    .replace(/[-_.]+$/, '');
  return `${NODE_FINALIZER_PREFIX}${readable ? `${readable}-` : ''}${hash}`;
}

/** A short, stable hash of a node name, for names that must be shorter than node names may be. */
export function nodeHash(node: string): string {
  return createHash('sha256').update(node).digest('hex').slice(0, 10);
}

export type FinalizerErrorCode = 'ResourceGone' | 'ResourceDeleting';

export class FinalizerError extends Error {
  constructor(
    readonly code: FinalizerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface NodeFinalizerOptions {
  client: Pick<CrsClient, 'get' | 'patch'>;
  node: string;
  /** Re-read-and-retry rounds after a 409 Conflict. Default 8. */
  maxConflictRetries?: number;
  conflictBackoff?: BackoffPolicy;
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
}

export class NodeFinalizer implements FinalizerPort {
  /** The finalizer string this node adds and removes. */
  readonly finalizer: string;
  /** 409 Conflicts answered by a re-read (for tests and debugging). */
  conflicts = 0;
  private readonly client: Pick<CrsClient, 'get' | 'patch'>;
  private readonly maxConflictRetries: number;
  private readonly conflictBackoff: BackoffPolicy;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly random: () => number;

  constructor(options: NodeFinalizerOptions) {
    this.finalizer = finalizerFor(options.node);
    this.client = options.client;
    this.maxConflictRetries = options.maxConflictRetries ?? 8;
    this.conflictBackoff = options.conflictBackoff ?? { initialMs: 50, maxMs: 2000, jitter: 0.5 };
    this.clock = options.clock ?? realClock;
    this.logger = options.logger ?? noopLogger;
    this.random = options.random ?? Math.random;
  }

  /** Whether an object carries this node's finalizer. */
  isHeldBy(obj: { metadata: { finalizers?: string[] } }): boolean {
    return (obj.metadata.finalizers ?? []).includes(this.finalizer);
  }

  /**
   * Adds this node's finalizer. Throws FinalizerError ResourceGone if the resource no longer exists
   * (or was re-created under another uid) and ResourceDeleting if it is being deleted without our
   * finalizer (the apiserver refuses new finalizers then, and no container should be created).
   */
  async ensure(ref: ResourceRef): Promise<void> {
    await this.change(ref, 'ensure');
  }

  /** Removes this node's finalizer; a resource that is already gone, or lacks it, is fine. */
  async release(ref: ResourceRef): Promise<void> {
    await this.releaseFinalizer(ref, this.finalizer);
  }

  /**
   * Removes a departed node's finalizer (departed-nodes.ts: its Node and its agent are gone, so
   * nobody else ever will, and deleting the resource would wait for it forever).
   */
  async releaseDeparted(ref: ResourceRef, node: string): Promise<void> {
    const finalizer = finalizerFor(node);
    if (finalizer === this.finalizer) throw new RangeError('finalizer: releaseDeparted is for other nodes; use release()');
    await this.releaseFinalizer(ref, finalizer);
  }

  private async releaseFinalizer(ref: ResourceRef, finalizer: string): Promise<void> {
    try {
      await this.change(ref, 'release', finalizer);
    } catch (err) {
      if (err instanceof FinalizerError && err.code === 'ResourceGone') return;
      throw err;
    }
  }

  private async change(ref: ResourceRef, action: 'ensure' | 'release', finalizer = this.finalizer): Promise<void> {
    const what = `${ref.namespace}/${ref.name}`;
    for (let attempt = 0; ; attempt++) {
      let obj;
      try {
        obj = await this.client.get(ref.namespace, ref.name);
      } catch (err) {
        if (isApiError(err, 'NotFound')) throw new FinalizerError('ResourceGone', `${action} finalizer: ${what} no longer exists`);
        throw err;
      }
      if (obj.metadata.uid !== ref.uid) {
        throw new FinalizerError('ResourceGone', `${action} finalizer: ${what} was re-created (uid ${obj.metadata.uid}, not ${ref.uid})`);
      }
      const finalizers = obj.metadata.finalizers ?? [];
      const index = finalizers.indexOf(finalizer);
      const ops = this.patchFor(action, finalizers, finalizer, index, obj.metadata.deletionTimestamp, what);
      if (!ops) return; // already as wanted
      const rv = obj.metadata.resourceVersion;
      if (!rv) throw new Error(`${action} finalizer: ${what} has no metadata.resourceVersion`);
      try {
        // Setting resourceVersion to the one read makes the patch conditional: 409 if it moved.
        await this.client.patch(ref.namespace, ref.name, [{ op: 'replace', path: '/metadata/resourceVersion', value: rv }, ...ops]);
        this.logger.info(action === 'ensure' ? 'finalizer added' : 'finalizer removed', {
          resource: what,
          finalizer,
        });
        return;
      } catch (err) {
        if (isApiError(err, 'NotFound')) throw new FinalizerError('ResourceGone', `${action} finalizer: ${what} no longer exists`);
        if (!isApiError(err, 'Conflict') || attempt >= this.maxConflictRetries) throw err;
        this.conflicts++;
        await sleep(this.clock, backoffDelay(this.conflictBackoff, attempt + 1, this.random));
      }
    }
  }

  /**
   * The patch writes the WHOLE finalizer list as read, plus or minus ours, with `add` (which sets a
   * member whether or not it exists). Index-based ops (`remove /metadata/finalizers/3`, `test`) are
   * avoided on purpose: the apiserver applies the whole patch to the CURRENT object before it
   * compares the resourceVersion, so after a concurrent change such an op fails with a bare 422
   * instead of the 409 we retry on (seen with two nodes releasing at once). The resourceVersion
   * precondition makes writing the whole list safe: it only lands on the list we read.
   */
  private patchFor(
    action: 'ensure' | 'release',
    finalizers: string[],
    finalizer: string,
    index: number,
    deletionTimestamp: string | undefined,
    what: string,
  ): JsonPatchOp[] | undefined {
    if (action === 'ensure') {
      if (index !== -1) return undefined;
      if (deletionTimestamp) {
        throw new FinalizerError(
          'ResourceDeleting',
          `ensure finalizer: ${what} is being deleted (since ${deletionTimestamp}); no new finalizer and no new container`,
        );
      }
      return [{ op: 'add', path: '/metadata/finalizers', value: [...finalizers, finalizer] }];
    }
    if (index === -1) return undefined;
    return [{ op: 'add', path: '/metadata/finalizers', value: finalizers.filter((f) => f !== finalizer) }];
  }
}
