// The template hash labelled on every replica (TEMPLATE_HASH): a replica with another hash is out of
// date and is replaced by the rolling update. Canonical JSON (sorted keys, no undefined) of
// spec.template + spec.checkpoint, sha256, first 10 hex chars.

import { createHash } from 'node:crypto';
import type { CheckpointReplicaSetSpec } from '../api/types.js';

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = canonical(v);
    }
    return out;
  }
  return value;
}

export function templateHash(spec: Pick<CheckpointReplicaSetSpec, 'template' | 'checkpoint'>): string {
  const text = JSON.stringify(canonical({ template: spec.template, checkpoint: spec.checkpoint }));
  return createHash('sha256').update(text).digest('hex').slice(0, 10);
}
