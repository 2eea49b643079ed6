// EndpointSlices for the Ready replicas of each resource on this node, so a selector-less Service
// (spec.serviceName) routes to them.
//
// One slice per Ready REPLICA, not one per resource and node: every endpoint of a slice shares the
// slice's ports, and each replica publishes its port on its own ephemeral host port of the one node
// address. A replica's slice never changes while it runs (address and host port are fixed from its
// start), so slices are only created and deleted: RBAC needs list, create and delete, no update.
// The agent removes them itself when the resource goes (the test bed has no garbage collector; in a
// cluster the ownerReference also lets Kubernetes collect them).

import { createHash } from 'node:crypto';
import {
  DiscoveryV1Api,
  Observable,
  type ConfigurationOptions,
  type KubeConfig,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
  type V1EndpointSlice,
} from '@kubernetes/client-node';
import { NODE, OWNER_UID, REPLICA_ID } from '../api/labels.js';
import { FairLimiter } from '../engine/limiter.js';
import { API_VERSION, KIND, type CheckpointReplicaSet } from '../api/types.js';
import type { Replica } from '../engine/types.js';
import { toApiError } from './api-error.js';
import type { Logger } from './logger.js';

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
/** Who manages these slices (the EndpointSlice controller leaves slices of other managers alone). */
const MANAGED_BY = 'crs-controller.checkpoint.dev';

/** The calls on EndpointSlices (a port: unit tests pass a fake). Each is bounded by `signal`. */
export interface EndpointSliceClient {
  list(namespace: string, labelSelector: string, signal: AbortSignal): Promise<V1EndpointSlice[]>;
  create(namespace: string, slice: V1EndpointSlice, signal: AbortSignal): Promise<void>;
  /** Idempotent: a slice already gone is fine. */
  delete(namespace: string, name: string, signal: AbortSignal): Promise<void>;
}

/** Per-call options that hand the request an AbortSignal (client-node aborts the fetch with it). */
function withSignal(signal: AbortSignal): ConfigurationOptions {
  // The object-parameter API hands options to the Observable layer: hence an Observable middleware.
  const middleware: ObservableMiddleware = {
    pre: (context: RequestContext) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

export function createEndpointSliceClient(kc: KubeConfig): EndpointSliceClient {
  const api = kc.makeApiClient(DiscoveryV1Api);
  return {
    async list(namespace, labelSelector, signal) {
      try {
        return (await api.listNamespacedEndpointSlice({ namespace, labelSelector }, withSignal(signal))).items;
      } catch (err) {
        throw toApiError(err, `list endpointslices in ${namespace}`);
      }
    },
    async create(namespace, body, signal) {
      try {
        await api.createNamespacedEndpointSlice({ namespace, body }, withSignal(signal));
      } catch (err) {
        const e = toApiError(err, `create endpointslice ${namespace}/${body.metadata?.name ?? ''}`);
        if (e.code !== 'Conflict') throw e; // already there (a retry after a lost answer): same content by name
      }
    },
    async delete(namespace, name, signal) {
      try {
        await api.deleteNamespacedEndpointSlice({ namespace, name }, withSignal(signal));
      } catch (err) {
        const e = toApiError(err, `delete endpointslice ${namespace}/${name}`);
        if (e.code !== 'NotFound') throw e;
      }
    },
  };
}

function hash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** `<resource>-<replicaId>-<hash>`: stable for a replica's container, unique across nodes and attempts. */
function sliceName(resource: CheckpointReplicaSet, node: string, replica: Replica): string {
  return `${resource.metadata.name.slice(0, 200)}-${replica.replicaId}-${hash(`${node}/${replica.containerId}`, 10)}`;
}

function ownSelector(uid: string, node: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGED_BY},${OWNER_UID}=${uid},${NODE}=${node}`;
}

/**
 * The slice of one Ready replica with published ports; undefined when it has none to offer. Ports
 * carry the template's names; the address is the node's, where Docker published the host ports.
 */
export function desiredSlice(resource: CheckpointReplicaSet, node: string, address: string, replica: Replica): V1EndpointSlice | undefined {
  if (!replica.ready || !replica.ports?.length) return undefined;
  const declared = resource.spec.template.ports ?? [];
  const ports = replica.ports.map((p) => {
    const name = declared.find((d) => d.containerPort === p.containerPort && d.protocol === p.protocol)?.name;
    return { port: p.hostPort, protocol: p.protocol, ...(name ? { name } : {}) };
  });
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: sliceName(resource, node, replica),
      namespace: resource.metadata.namespace,
      labels: {
        [MANAGED_BY_LABEL]: MANAGED_BY,
        [OWNER_UID]: resource.metadata.uid,
        [NODE]: node,
        [REPLICA_ID]: replica.replicaId,
        ...(resource.spec.serviceName ? { [SERVICE_NAME_LABEL]: resource.spec.serviceName } : {}),
      },
      // No blockOwnerDeletion: it would need update on the resource's finalizers, which the agent lacks.
      ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: resource.metadata.name, uid: resource.metadata.uid, controller: true }],
    },
    addressType: address.includes(':') ? 'IPv6' : 'IPv4',
    endpoints: [{ addresses: [address], conditions: { ready: true, serving: true, terminating: false }, nodeName: node }],
    ports,
  };
}

/** What a slice says that matters; a slice that differs from the desired one is replaced. */
function fingerprint(slice: V1EndpointSlice): string {
  return JSON.stringify([
    slice.metadata?.labels?.[SERVICE_NAME_LABEL] ?? '',
    slice.endpoints.map((e) => e.addresses),
    (slice.ports ?? []).map((p) => [p.name ?? '', p.port, p.protocol]).sort(),
  ]);
}

export interface SyncPlan {
  create: V1EndpointSlice[];
  delete: string[];
}

/** Pure: slices to create and to delete so that exactly the desired ones exist. */
export function planSlices(existing: readonly V1EndpointSlice[], desired: readonly V1EndpointSlice[]): SyncPlan {
  const have = new Map(existing.map((s) => [s.metadata?.name ?? '', s]));
  const want = new Map(desired.map((s) => [s.metadata?.name ?? '', s]));
  const plan: SyncPlan = { create: [], delete: [] };
  for (const [name, slice] of have) {
    const wanted = want.get(name);
    if (!wanted || fingerprint(wanted) !== fingerprint(slice)) plan.delete.push(name);
  }
  for (const [name, slice] of want) {
    const had = have.get(name);
    if (!had || fingerprint(had) !== fingerprint(slice)) plan.create.push(slice);
  }
  return plan;
}

export interface EndpointSyncOptions {
  client: EndpointSliceClient;
  node: string;
  /** The node's address that clients reach published ports at. */
  address: string;
  /** The replicas of a resource on this node (the engine). */
  listReplicas: (uid: string, signal: AbortSignal) => Promise<Replica[]>;
  logger: Logger;
  /** Deadline of each apiserver or engine call. Default 10 s. */
  callTimeoutMs?: number;
  /** Resources synced at once (each sync is one engine list and one apiserver list). Default 4. */
  concurrency?: number;
}

/** What, besides replicas changing, moves a resource's slices: its spec or its deletion. */
function specMark(resource: CheckpointReplicaSet): string {
  return `${resource.metadata.generation ?? 0}/${resource.metadata.deletionTimestamp ?? ''}`;
}

/**
 * Keeps each resource's slices on this node in step with its Ready replicas. sync() runs one
 * resource at a time per key; a call while one runs marks it to run once more afterwards, so bursts
 * of container events cost one extra pass, never a pile-up. At most `concurrency` resources sync at
 * once (fair between resources), so a resync of 1000 resources does not open 2000 requests together.
 */
export class EndpointSync {
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Map<string, CheckpointReplicaSet | { gone: true; namespace: string; uid: string }>();
  /** The spec mark each resource was last synced for (syncOnSpecChange). */
  private readonly synced = new Map<string, string>();
  private readonly slots: FairLimiter;

  constructor(private readonly o: EndpointSyncOptions) {
    this.slots = new FairLimiter(o.concurrency ?? 4);
  }

  /** Bring one resource's slices in step (or remove them all when it is deleting). */
  sync(resource: CheckpointReplicaSet): Promise<void> {
    this.synced.set(resource.metadata.uid, specMark(resource));
    return this.schedule(resource.metadata.uid, resource);
  }

  /**
   * sync() only when the spec or the deletion changed since the last sync: a status write echoed by
   * the watch moves no slice (replicas moving arrive as engine events, which call sync()).
   */
  syncOnSpecChange(resource: CheckpointReplicaSet): Promise<void> | undefined {
    if (this.synced.get(resource.metadata.uid) === specMark(resource)) return undefined;
    return this.sync(resource);
  }

  /** The resource is gone: remove its slices on this node. */
  forget(namespace: string, uid: string): Promise<void> {
    this.synced.delete(uid);
    return this.schedule(uid, { gone: true, namespace, uid });
  }

  private schedule(uid: string, target: CheckpointReplicaSet | { gone: true; namespace: string; uid: string }): Promise<void> {
    const current = this.running.get(uid);
    if (current) {
      this.again.set(uid, target);
      return current;
    }
    const run = (async () => {
      let next: typeof target | undefined = target;
      while (next) {
        this.again.delete(uid);
        await this.bounded(uid, next).catch((err: unknown) => this.o.logger.warn('endpoint slice sync failed; the next event or resync retries', { uid, err }));
        next = this.again.get(uid);
      }
    })().finally(() => this.running.delete(uid));
    this.running.set(uid, run);
    return run;
  }

  private async bounded(uid: string, target: CheckpointReplicaSet | { gone: true; namespace: string; uid: string }): Promise<void> {
    const release = await this.slots.acquire(uid);
    try {
      await this.once(target);
    } finally {
      release();
    }
  }

  private async once(target: CheckpointReplicaSet | { gone: true; namespace: string; uid: string }): Promise<void> {
    const timeout = this.o.callTimeoutMs ?? 10_000;
    const gone = 'gone' in target || target.metadata.deletionTimestamp !== undefined;
    const namespace = 'gone' in target ? target.namespace : target.metadata.namespace;
    const uid = 'gone' in target ? target.uid : target.metadata.uid;
    let desired: V1EndpointSlice[] = [];
    if (!gone && !('gone' in target)) {
      const replicas = await this.o.listReplicas(uid, AbortSignal.timeout(timeout));
      desired = replicas.map((r) => desiredSlice(target, this.o.node, this.o.address, r)).filter((s): s is V1EndpointSlice => s !== undefined);
    }
    const existing = await this.o.client.list(namespace, ownSelector(uid, this.o.node), AbortSignal.timeout(timeout));
    const plan = planSlices(existing, desired);
    // Delete first: a replica that stopped must stop receiving traffic before anything else.
    for (const name of plan.delete) await this.o.client.delete(namespace, name, AbortSignal.timeout(timeout));
    for (const slice of plan.create) await this.o.client.create(namespace, slice, AbortSignal.timeout(timeout));
    if (plan.create.length || plan.delete.length)
      this.o.logger.info('endpoint slices updated', { namespace, uid, created: plan.create.length, deleted: plan.delete.length, ready: desired.length });
  }

  /** Waits for the syncs in progress (shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }
}
