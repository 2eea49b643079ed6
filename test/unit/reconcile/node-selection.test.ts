import { describe, expect, it } from 'vitest';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { nodeLabels, selectsNode } from '../../../controller/reconcile/node-selection.js';

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

describe('nodeLabels', () => {
  it('a Node whose last label was removed does not match a selector; only an absent Node is unknown', () => {
    // The multinode e2e's `kubectl label node n3 pool-` left a Node with no labels at all, which
    // read as a missing Node and kept its replicas instead of removing them.
    const crs = withSelector({ pool: 'a' });
    expect(selectsNode(crs, nodeLabels({ metadata: { name: 'n3' } } as { metadata: { labels?: Record<string, string> } }))).toBe(false);
    expect(selectsNode(crs, nodeLabels({ metadata: { labels: { pool: 'a' } } }))).toBe(true);
    expect(selectsNode(crs, nodeLabels(undefined))).toBe('unknown');
  });
});
