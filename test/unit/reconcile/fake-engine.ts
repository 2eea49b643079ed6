// An in-memory RestoreEngine for unit tests of the reconcile logic (never used outside tests).
// It keeps containers in a map, counts calls and restores in flight, and lets a test script
// failures per call, hold restores open, freeze the list (a stale cache) or take the engine down.

import { EngineError } from '../../../controller/engine/errors.js';
import type { ContainerWatchEvent, EngineEvent, FailureReason, Replica, ReplicaSpec, RestoreEngine, RestoreOptions } from '../../../controller/engine/types.js';
import type { CheckpointSource } from '../../../controller/api/types.js';

/** What one restore/cold-start call does: succeed, fail with a reason, or leave a container behind. */
export type Outcome = 'ok' | FailureReason | { leave: 'created' | 'exited' };

export interface RestoreCall {
  spec: ReplicaSpec;
  mode: 'restore' | 'cold';
  at: number;
  aborted: boolean;
}

export class FakeEngine implements RestoreEngine {
  readonly containers = new Map<string, Replica>();
  readonly restoreCalls: RestoreCall[] = [];
  readonly removeCalls: string[] = [];
  readonly checkSourceCalls: CheckpointSource[] = [];
  listCalls = 0;
  maxInFlight = 0;
  /** The most containers one owner ever had at once (live or not). */
  maxContainers = 0;
  concurrencyLimit = 10;
  /** Decides each restore/cold start; default: succeed. */
  outcome: (spec: ReplicaSpec, mode: 'restore' | 'cold') => Outcome = () => 'ok';
  /** When set, checkSource throws an EngineError with this reason. */
  sourceFailure: FailureReason | undefined;
  /** When true, every call throws EngineUnavailable (Docker down). */
  down = false;
  /** When set, listReplicas returns this instead of the truth (a stale cache). */
  frozenList: Replica[] | undefined;
  /** When true, restores wait until release() is called (or their signal aborts). */
  hold = false;
  private held: Array<() => void> = [];
  private inFlightNow = 0;
  private nextId = 1;

  constructor(private readonly now: () => number) {}

  get inFlight(): number {
    return this.inFlightNow;
  }

  /** Lets every held restore finish. */
  release(): void {
    const held = this.held;
    this.held = [];
    for (const go of held) go();
  }

  /** Lets the oldest held restore finish, the others stay held. */
  releaseOne(): void {
    this.held.shift()?.();
  }

  get heldCount(): number {
    return this.held.length;
  }

  ownedBy(uid: string): Replica[] {
    return [...this.containers.values()].filter((r) => r.ownerUid === uid);
  }

  /** Puts a container in place as if an earlier agent (or someone else) had made it. */
  seed(replica: Omit<Replica, 'containerId' | 'containerName' | 'createdAt'> & { createdAt?: Date }): Replica {
    const id = `ctr-${this.nextId++}`;
    const full: Replica = {
      ...replica,
      containerId: id,
      containerName: `seed-${replica.replicaId}-${replica.attempt}`,
      createdAt: replica.createdAt ?? new Date(this.now() - 3_600_000 + this.nextId),
    };
    this.containers.set(id, full);
    return full;
  }

  private guard(): void {
    if (this.down) throw new EngineError('EngineUnavailable', 'cannot reach the Docker engine at unix:///fake.sock');
  }

  async listReplicas(ownerUid: string): Promise<Replica[]> {
    this.listCalls++;
    // The list is what Docker had when it was asked: a change right after the call is not in it.
    const list = (this.frozenList ?? [...this.containers.values()]).filter((r) => r.ownerUid === ownerUid).map((r) => ({ ...r }));
    await Promise.resolve();
    this.guard();
    return list;
  }

  /** A replica's process exits (docker kill, a crash, the engine stopping it): it stays as 'exited'. */
  kill(containerId: string): Replica {
    const replica = this.containers.get(containerId);
    if (!replica) throw new Error(`no container ${containerId}`);
    replica.state = 'exited';
    replica.ready = false;
    return replica;
  }

  async listAllReplicas(): Promise<Replica[]> {
    await Promise.resolve();
    this.guard();
    return [...this.containers.values()].map((r) => ({ ...r }));
  }

  restoreReplica(spec: ReplicaSpec, options: RestoreOptions): Promise<Replica> {
    return this.start(spec, options, 'restore');
  }

  coldStartReplica(spec: ReplicaSpec, options: RestoreOptions): Promise<Replica> {
    return this.start(spec, options, 'cold');
  }

  private async start(spec: ReplicaSpec, options: RestoreOptions, mode: 'restore' | 'cold'): Promise<Replica> {
    const call: RestoreCall = { spec, mode, at: this.now(), aborted: false };
    this.restoreCalls.push(call);
    this.guard();
    const name = `${spec.owner.name}-${spec.replicaId}-${spec.attempt}`;
    if ([...this.containers.values()].some((r) => r.containerName === name)) {
      throw new EngineError('NameConflict', `container name ${name} is already in use`);
    }
    this.inFlightNow++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlightNow);
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          call.aborted = true;
          reject(new EngineError('Aborted', `restore of ${name} aborted`));
        };
        if (options.signal?.aborted) return onAbort();
        options.signal?.addEventListener('abort', onAbort, { once: true });
        const go = (): void => {
          options.signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        if (this.hold) this.held.push(go);
        else queueMicrotask(go);
      });
      const outcome = this.outcome(spec, mode);
      if (typeof outcome === 'string' && outcome !== 'ok') throw new EngineError(outcome, `${outcome} for ${name} (scripted)`);
      const replica: Replica = {
        containerId: `ctr-${this.nextId++}`,
        containerName: name,
        ownerUid: spec.owner.uid,
        replicaId: spec.replicaId,
        attempt: spec.attempt,
        templateHash: spec.templateHash,
        startMode: mode,
        state: typeof outcome === 'object' ? outcome.leave : 'running',
        ready: typeof outcome !== 'object',
        // Distinct, increasing creation times even when the simulated clock stands still.
        createdAt: new Date(this.now() + this.nextId),
      };
      this.containers.set(replica.containerId, replica);
      this.maxContainers = Math.max(this.maxContainers, this.ownedBy(spec.owner.uid).length);
      return replica;
    } finally {
      this.inFlightNow--;
    }
  }

  async removeReplica(ownerUid: string, containerId: string): Promise<void> {
    this.removeCalls.push(containerId);
    await Promise.resolve();
    this.guard();
    const replica = this.containers.get(containerId);
    if (!replica) return;
    if (replica.ownerUid !== ownerUid) throw new EngineError('InvalidSpec', `container ${containerId} is not owned by ${ownerUid}`);
    this.containers.delete(containerId);
  }

  async checkSource(_owner: unknown, source: CheckpointSource): Promise<void> {
    this.checkSourceCalls.push(source);
    await Promise.resolve();
    this.guard();
    if (this.sourceFailure)
      throw new EngineError(this.sourceFailure, `${this.sourceFailure}: checkpoint ${source.name ?? source.path} of ${source.container ?? 'path'} (scripted)`);
  }

  readonly watchers = new Set<(event: ContainerWatchEvent) => void>();

  watchContainers(listener: (event: ContainerWatchEvent) => void): () => Promise<void> {
    this.watchers.add(listener);
    return async () => {
      this.watchers.delete(listener);
    };
  }

  onEvent(_listener: (event: EngineEvent) => void): () => void {
    return () => {};
  }

  async sweep(): Promise<number> {
    return 0;
  }

  async diskHeadroomBytes(): Promise<number> {
    return 1e12;
  }

  async ping(): Promise<void> {
    this.guard();
  }

  async close(): Promise<void> {}
}
