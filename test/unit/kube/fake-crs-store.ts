// An in-memory stand-in for the apiserver's CheckpointReplicaSet storage, for unit tests of pure
// logic around it: resourceVersion bumps on every write, stale writes answer 409 Conflict, and the
// test can inject failures and a hook that runs between a read and the next write.
import { ApiError } from '../../../controller/kube/api-error.js';
import type { CheckpointReplicaSetList, CrsClient, JsonPatchOp, StatusApply } from '../../../controller/kube/client.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';

export class FakeCrsStore implements CrsClient {
  private objects = new Map<string, CheckpointReplicaSet>();
  private rv = 1;
  gets = 0;
  statusWrites = 0;
  /** Status applies, in order, as sent. */
  applies: StatusApply[] = [];
  /** Which status.nodes entries each field manager applied last, per object (for removals). */
  private owned = new Map<string, Set<string>>();
  patches: JsonPatchOp[][] = [];
  /** Errors the next calls throw, in order (undefined = succeed). */
  failNext: Array<ApiError | undefined> = [];
  /** Runs after each get, before the caller can write: simulates another writer racing. */
  afterGet: ((obj: CheckpointReplicaSet) => void) | undefined;
  /** Runs after each status apply is stored: simulates another writer landing right after it. */
  afterApply: ((apply: StatusApply) => void) | undefined;
  /** Holds replaceStatus and applyStatus until resolved, to observe in-flight behaviour. */
  gate: Promise<void> | undefined;

  put(obj: CheckpointReplicaSet): CheckpointReplicaSet {
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    this.objects.set(`${obj.metadata.namespace}/${obj.metadata.name}`, stored);
    return structuredClone(stored);
  }

  peek(namespace: string, name: string): CheckpointReplicaSet | undefined {
    const o = this.objects.get(`${namespace}/${name}`);
    return o && structuredClone(o);
  }

  delete(namespace: string, name: string): void {
    this.objects.delete(`${namespace}/${name}`);
  }

  async get(namespace: string, name: string): Promise<CheckpointReplicaSet> {
    this.gets++;
    this.maybeFail();
    const o = this.objects.get(`${namespace}/${name}`);
    if (!o) throw new ApiError('NotFound', `checkpointreplicasets "${name}" not found`, 404, 'NotFound');
    const copy = structuredClone(o);
    this.afterGet?.(copy);
    return copy;
  }

  async list(): Promise<CheckpointReplicaSetList> {
    return { metadata: { resourceVersion: String(this.rv) }, items: [...this.objects.values()].map((o) => structuredClone(o)) };
  }

  async replaceStatus(obj: CheckpointReplicaSet): Promise<CheckpointReplicaSet> {
    if (this.gate) await this.gate;
    this.maybeFail();
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const current = this.objects.get(key);
    if (!current) throw new ApiError('NotFound', 'not found', 404);
    if (current.metadata.resourceVersion !== obj.metadata.resourceVersion) {
      throw new ApiError('Conflict', 'the object has been modified; please apply your changes to the latest version', 409, 'Conflict');
    }
    this.statusWrites++;
    const next = structuredClone(current);
    if (obj.status) next.status = structuredClone(obj.status);
    else delete next.status;
    return this.put(next);
  }

  /**
   * Like the apiserver's server-side apply of /status: status.nodes merges by node (an entry this
   * manager applied before and omits now is removed), other fields are set; a resourceVersion is a
   * precondition; a uid is NOT checked (the real apiserver ignores it on a status apply).
   */
  async applyStatus(apply: StatusApply): Promise<CheckpointReplicaSet> {
    if (this.gate) await this.gate;
    this.applies.push(structuredClone(apply));
    this.maybeFail();
    const key = `${apply.namespace}/${apply.name}`;
    const current = this.objects.get(key);
    if (!current) throw new ApiError('NotFound', 'not found', 404, 'NotFound');
    if (apply.resourceVersion && apply.resourceVersion !== current.metadata.resourceVersion) {
      throw new ApiError('Conflict', 'the object has been modified; please apply your changes to the latest version', 409, 'Conflict');
    }
    this.statusWrites++;
    const next = structuredClone(current);
    const { nodes, ...fields } = structuredClone(apply.status) as { nodes?: Array<{ node: string }> } & Record<string, unknown>;
    const status = { ...(next.status ?? {}), ...fields } as Record<string, unknown> & { nodes?: Array<{ node: string }> };
    if (nodes) {
      const ownerKey = `${key}#${current.metadata.uid}#${apply.fieldManager}`;
      const before = this.owned.get(ownerKey) ?? new Set<string>();
      const applied = new Set(nodes.map((n) => n.node));
      let list = (status.nodes ?? []).filter((n) => applied.has(n.node) || !before.has(n.node));
      for (const n of nodes) {
        const i = list.findIndex((x) => x.node === n.node);
        list = i === -1 ? [...list, n] : list.map((x, j) => (j === i ? n : x));
      }
      status.nodes = list;
      this.owned.set(ownerKey, applied);
    }
    next.status = status as CheckpointReplicaSet['status'];
    const stored = this.put(next);
    this.afterApply?.(apply);
    return stored;
  }

  async patch(namespace: string, name: string, ops: JsonPatchOp[]): Promise<CheckpointReplicaSet> {
    this.patches.push(ops);
    this.maybeFail();
    const key = `${namespace}/${name}`;
    const current = this.objects.get(key);
    if (!current) throw new ApiError('NotFound', 'not found', 404);
    const doc = structuredClone(current) as unknown as Record<string, unknown>;
    for (const op of ops) applyOp(doc, op);
    const next = doc as unknown as CheckpointReplicaSet;
    // Like the apiserver: a resourceVersion set by the patch is a precondition.
    if (next.metadata.resourceVersion !== current.metadata.resourceVersion) {
      throw new ApiError('Conflict', 'the object has been modified', 409, 'Conflict');
    }
    return this.put(next);
  }

  private maybeFail(): void {
    if (this.failNext.length > 0) {
      const err = this.failNext.shift();
      if (err) throw err;
    }
  }
}

/** Enough of RFC 6902 for finalizer patches: add/replace/remove/test on object paths and array indexes. */
function applyOp(doc: Record<string, unknown>, op: JsonPatchOp): void {
  const parts = op.path
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = parts.pop() as string;
  let parent: unknown = doc;
  for (const p of parts) {
    parent = (parent as Record<string, unknown>)[p];
    if (parent === undefined) throw new ApiError('Invalid', `path ${op.path} does not exist`, 422);
  }
  const container = parent as Record<string, unknown> | unknown[];
  if (op.op === 'test') {
    const actual = Array.isArray(container) ? container[Number(last)] : container[last];
    if (JSON.stringify(actual) !== JSON.stringify(op.value)) {
      throw new ApiError('Invalid', `testing value ${op.path} failed: test failed`, 422);
    }
    return;
  }
  if (Array.isArray(container)) {
    const index = last === '-' ? container.length : Number(last);
    if (op.op === 'add') container.splice(index, 0, op.value);
    else if (op.op === 'replace') container[index] = op.value;
    else container.splice(index, 1);
  } else if (op.op === 'remove') {
    delete container[last];
  } else {
    container[last] = op.value;
  }
}

export function sampleResource(name = 'web', uid = 'uid-web', generation = 1): CheckpointReplicaSet {
  return {
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace: 'ns', uid, generation },
    spec: {
      replicas: 3,
      checkpoint: { container: 'app-template', name: 'warm' },
      template: { image: 'crs-sample-app:latest' },
      restore: { maxConcurrent: 10, timeoutSeconds: 120, maxAttempts: 5, fallback: 'None' },
    },
  };
}
