import { describe, expect, it } from 'vitest';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { selectsNode } from '../../../controller/reconcile/node-selection.js';

function withSelector(nodeSelector?: Record<string, string>): CheckpointReplicaSet {
  return {
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name: 'app', namespace: 'ns', uid: 'u1' },
    spec: {
      replicas: 1,
      checkpoint: { container: 'src', name: 'warm' },
      template: { image: 'img' },
      restore: { maxConcurrent: 10, timeoutSeconds: 120, maxAttempts: 5, fallback: 'None' },
      ...(nodeSelector ? { nodeSelector } : {}),
    },
  } as CheckpointReplicaSet;
}

describe('selectsNode', () => {
  it('selects every node, even one without a Node object, when the selector is empty or absent', () => {
    expect(selectsNode(withSelector(), undefined)).toBe(true);
    expect(selectsNode(withSelector({}), { zone: 'a' })).toBe(true);
  });

  it('needs every selector label with the same value', () => {
    const crs = withSelector({ zone: 'a', tier: 'restore' });
    expect(selectsNode(crs, { zone: 'a', tier: 'restore', other: 'x' })).toBe(true);
    expect(selectsNode(crs, { zone: 'a' })).toBe(false);
    expect(selectsNode(crs, { zone: 'b', tier: 'restore' })).toBe(false);
    expect(selectsNode(crs, undefined)).toBe('unknown');
  });
});
