// From a CheckpointReplicaSet to what the planner needs, with the checks the reconciler relies on.
// The apiserver's schema enforces these too; a value that slips through (an older CRD, a direct
// etcd write) must not crash the loop or be half-applied: it sets Degraded InvalidSpec instead,
// with the field and the reason.

import { MAX_CONCURRENT_RESTORES } from '../api/schema.js';
import type { CheckpointReplicaSet } from '../api/types.js';
import { validateSpec, type AgentLimits } from '../api/validate.js';
import type { DesiredState } from './planner.js';
import type { ResourceRef } from './ports.js';
import { templateHash } from './template-hash.js';

export interface FieldError {
  field: string;
  reason: string;
}

export interface DesiredResult {
  desired: DesiredState;
  errors: FieldError[];
}

function integerIn(value: unknown, field: string, min: number, max: number, errors: FieldError[]): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    errors.push({ field, reason: `must be an integer, got ${JSON.stringify(value)}` });
  } else if (value < min || value > max) {
    errors.push({ field, reason: `must be between ${min} and ${max}, got ${value}` });
  }
}

/**
 * The shape checks the reconciler relies on, then (when the shape is sound) the API's agent-side
 * validation (quantities, checkpoint root, forbidden fields) with this agent's limits.
 */
export function validateForReconcile(resource: CheckpointReplicaSet, agent: AgentLimits = {}): FieldError[] {
  const errors: FieldError[] = [];
  const spec = resource.spec as Partial<CheckpointReplicaSet['spec']> | undefined;
  if (!spec) return [{ field: 'spec', reason: 'is missing' }];
  integerIn(spec.replicas, 'spec.replicas', 0, 10_000, errors);
  const restore = spec.restore;
  if (!restore) {
    errors.push({ field: 'spec.restore', reason: 'is missing (the CRD fills defaults; is the CRD installed at the current version?)' });
  } else {
    integerIn(restore.maxConcurrent, 'spec.restore.maxConcurrent', 1, MAX_CONCURRENT_RESTORES, errors);
    integerIn(restore.maxAttempts, 'spec.restore.maxAttempts', 1, 100, errors);
    if (typeof restore.timeoutSeconds !== 'number' || !(restore.timeoutSeconds > 0)) {
      errors.push({ field: 'spec.restore.timeoutSeconds', reason: `must be a positive number, got ${JSON.stringify(restore.timeoutSeconds)}` });
    }
    if (restore.fallback !== 'None' && restore.fallback !== 'ColdStart') {
      errors.push({ field: 'spec.restore.fallback', reason: `must be None or ColdStart, got ${JSON.stringify(restore.fallback)}` });
    }
  }
  if (!spec.template || typeof spec.template.image !== 'string' || spec.template.image === '') {
    errors.push({ field: 'spec.template.image', reason: 'must be a non-empty image reference' });
  }
  const source = spec.checkpoint;
  if (!source) {
    errors.push({ field: 'spec.checkpoint', reason: 'is missing' });
  } else if ([source.path, source.container, source.bootstrap].filter((v) => v !== undefined).length !== 1) {
    errors.push({ field: 'spec.checkpoint', reason: 'exactly one of container (with name), path or bootstrap must be set' });
  } else if (source.bootstrap !== undefined) {
    integerIn(source.bootstrap.warmupSeconds, 'spec.checkpoint.bootstrap.warmupSeconds', 0, 3600, errors);
    integerIn(source.bootstrap.timeoutSeconds, 'spec.checkpoint.bootstrap.timeoutSeconds', 1, 86_400, errors);
  } else if (source.container !== undefined && !source.name) {
    errors.push({ field: 'spec.checkpoint.name', reason: 'is required with spec.checkpoint.container' });
  }
  if (errors.length > 0) return errors;
  return validateSpec(resource.spec, agent).map((p) => ({ field: p.field, reason: p.message }));
}

export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.reason}`).join('; ');
}

/** Desired state for the planner; when `errors` is not empty, only `deleting`/`paused` are usable. */
export function desiredState(resource: CheckpointReplicaSet | undefined, gone: boolean, agent: AgentLimits = {}, selected = true): DesiredResult {
  if (!resource) {
    return {
      desired: { replicas: 0, templateHash: '', maxConcurrent: MAX_CONCURRENT_RESTORES, maxAttempts: 1, fallback: 'None', paused: false, deleting: true },
      errors: [],
    };
  }
  const errors = validateForReconcile(resource, agent);
  const spec = resource.spec;
  const restore = spec?.restore;
  const valid = errors.length === 0;
  return {
    desired: {
      // A resource whose nodeSelector does not pick this node wants none here.
      replicas: valid && selected ? spec.replicas : 0,
      templateHash: valid ? templateHash(spec) : '',
      maxConcurrent: valid ? restore.maxConcurrent : 1,
      maxAttempts: valid ? restore.maxAttempts : 1,
      fallback: valid ? restore.fallback : 'None',
      // An invalid spec is never acted on: planning it as paused changes nothing on the host.
      paused: spec?.paused === true || !valid,
      deleting: gone || resource.metadata.deletionTimestamp !== undefined,
    },
    errors,
  };
}

export function refOf(resource: CheckpointReplicaSet): ResourceRef {
  return {
    namespace: resource.metadata.namespace,
    name: resource.metadata.name,
    uid: resource.metadata.uid,
    generation: resource.metadata.generation ?? 0,
  };
}
