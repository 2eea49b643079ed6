// Typed access to CheckpointReplicaSets through @kubernetes/client-node's CustomObjectsApi. Every
// failure surfaces as an ApiError (code NotFound/Conflict/Gone/Forbidden/Unavailable/Invalid/Unknown).

import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, KIND, PLURAL, VERSION, type CheckpointReplicaSet } from '../api/types.js';
import { ApiError, toApiError } from './api-error.js';

export { isApiError } from './api-error.js';

/** One RFC 6902 operation; `value` is any JSON. */
export type JsonPatchOp = { op: 'add' | 'replace' | 'test'; path: string; value: unknown } | { op: 'remove'; path: string };

export interface CheckpointReplicaSetList {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string };
  items: CheckpointReplicaSet[];
}

/** The calls the kube layer makes on CheckpointReplicaSets (a port: unit tests pass a fake). */
export interface CrsClient {
  get(namespace: string, name: string): Promise<CheckpointReplicaSet>;
  /** All resources, or one namespace's. */
  list(namespace?: string): Promise<CheckpointReplicaSetList>;
  /**
   * PUT /status with the object's metadata.resourceVersion: the apiserver answers Conflict when the
   * object changed since it was read. Only `status` is taken from the body.
   */
  replaceStatus(obj: CheckpointReplicaSet): Promise<CheckpointReplicaSet>;
  /** JSON patch (RFC 6902) of the main resource, e.g. metadata.finalizers. */
  patch(namespace: string, name: string, ops: JsonPatchOp[]): Promise<CheckpointReplicaSet>;
  /**
   * Server-side apply (force) of /status under `fieldManager`: the apiserver merges `status` into
   * what others own (status.nodes is a list-map keyed by node) instead of replacing it. A
   * resourceVersion makes the apply conditional (409 if it moved). The apiserver does NOT check a
   * metadata.uid on a status apply (measured): callers compare the answer's uid themselves.
   */
  applyStatus(apply: StatusApply): Promise<CheckpointReplicaSet>;
}

/** What applyStatus sends: the object's identity and the status fields this manager owns. */
export interface StatusApply {
  namespace: string;
  name: string;
  fieldManager: string;
  status: Record<string, unknown>;
  /** Apply only if the object is still at this resourceVersion. */
  resourceVersion?: string;
}

export const FIELD_MANAGER = 'crs-controller';

export function crsPath(namespace?: string): string {
  return namespace ? `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
}

export function createCrsClient(kc: KubeConfig): CrsClient {
  const api = kc.makeApiClient(CustomObjectsApi);
  const base = { group: GROUP, version: VERSION, plural: PLURAL };
  return {
    async get(namespace, name) {
      const what = `get ${PLURAL} ${namespace}/${name}`;
      try {
        return asResource(await api.getNamespacedCustomObject({ ...base, namespace, name }), what);
      } catch (err) {
        throw toApiError(err, what);
      }
    },
    async list(namespace) {
      const what = `list ${PLURAL}${namespace ? ` in ${namespace}` : ''}`;
      try {
        const raw: unknown = namespace ? await api.listNamespacedCustomObject({ ...base, namespace }) : await api.listClusterCustomObject(base);
        return asList(raw, what);
      } catch (err) {
        throw toApiError(err, what);
      }
    },
    async replaceStatus(obj) {
      const { namespace, name } = obj.metadata;
      const what = `update ${PLURAL}/status ${namespace}/${name}`;
      if (!obj.metadata.resourceVersion) {
        // Without it the PUT would be unconditional and could overwrite another agent's write.
        throw new ApiError('Invalid', `${what}: metadata.resourceVersion is required for a conflict-safe write`, undefined);
      }
      try {
        return asResource(await api.replaceNamespacedCustomObjectStatus({ ...base, namespace, name, body: obj, fieldManager: FIELD_MANAGER }), what);
      } catch (err) {
        throw toApiError(err, what);
      }
    },
    async applyStatus(apply) {
      const { namespace, name } = apply;
      const what = `apply ${PLURAL}/status ${namespace}/${name} as ${apply.fieldManager}`;
      const body = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: KIND,
        metadata: { name, namespace, ...(apply.resourceVersion ? { resourceVersion: apply.resourceVersion } : {}) },
        status: apply.status,
      };
      try {
        return asResource(
          await api.patchNamespacedCustomObjectStatus(
            { ...base, namespace, name, body, fieldManager: apply.fieldManager, force: true },
            setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
          ),
          what,
        );
      } catch (err) {
        throw toApiError(err, what);
      }
    },
    async patch(namespace, name, ops) {
      const what = `patch ${PLURAL} ${namespace}/${name}`;
      try {
        return asResource(
          await api.patchNamespacedCustomObject(
            { ...base, namespace, name, body: ops, fieldManager: FIELD_MANAGER },
            setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
          ),
          what,
        );
      } catch (err) {
        throw toApiError(err, what);
      }
    },
  };
}

function asResource(raw: unknown, what: string): CheckpointReplicaSet {
  const meta = (raw as { metadata?: { name?: unknown; uid?: unknown } } | null)?.metadata;
  if (typeof meta?.name !== 'string' || typeof meta.uid !== 'string') {
    throw new ApiError('Unknown', `${what}: the apiserver answered with no metadata.name/uid`, undefined);
  }
  return raw as CheckpointReplicaSet;
}

function asList(raw: unknown, what: string): CheckpointReplicaSetList {
  const list = raw as { items?: unknown; metadata?: { resourceVersion?: string } } | null;
  if (!Array.isArray(list?.items)) {
    throw new ApiError('Unknown', `${what}: the apiserver answered with no items list`, undefined);
  }
  return { ...list, metadata: list.metadata ?? {}, items: list.items as CheckpointReplicaSet[] };
}
