import { describe, expect, it } from 'vitest';
import { InvalidSpecError, assertValidSpec, templateHash, validateSpec } from '../../../controller/api/validate.js';
import { canonicalJson } from '../../../controller/vocabulary.js';
import type { CheckpointReplicaSetSpec } from '../../../controller/api/types.js';

function spec(overrides: Partial<CheckpointReplicaSetSpec> = {}): CheckpointReplicaSetSpec {
  return {
    replicas: 45,
    checkpoint: { container: 'app-template', name: 'warm' },
    template: { image: 'crs-sample-app:latest', resources: { limits: { memory: '512Mi', cpu: '500m' } } },
    restore: { maxConcurrent: 10, timeoutSeconds: 120, maxAttempts: 5, fallback: 'None' },
    ...overrides,
  };
}

const agent = { checkpointRoot: '/var/lib/crs/checkpoints', hostCpus: 2 };

describe('validateSpec', () => {
  it('accepts the example spec', () => {
    expect(validateSpec(spec(), agent)).toEqual([]);
    expect(() => assertValidSpec(spec(), agent)).not.toThrow();
  });

  it('accepts a bootstrap source, even without a checkpoint root', () => {
    expect(validateSpec(spec({ checkpoint: { bootstrap: { warmupSeconds: 20, timeoutSeconds: 300 } } }), {})).toEqual([]);
  });

  it('accepts a path below the checkpoint root', () => {
    expect(validateSpec(spec({ checkpoint: { path: '/var/lib/crs/checkpoints/app/warm' } }), agent)).toEqual([]);
  });

  it.each<[string, Partial<CheckpointReplicaSetSpec>, { checkpointRoot?: string; hostCpus?: number; requireMemoryLimit?: boolean }, string, string]>([
    [
      'no memory limit where the operator requires one',
      { template: { image: 'i' } },
      { ...agent, requireMemoryLimit: true },
      'spec.template.resources.limits.memory',
      'Required',
    ],
    ['both sources', { checkpoint: { container: 'a', name: 'w', path: '/var/lib/crs/checkpoints/x' } }, agent, 'spec.checkpoint', 'Forbidden'],
    ['no source', { checkpoint: {} }, agent, 'spec.checkpoint', 'Required'],
    [
      'bootstrap and a container',
      { checkpoint: { container: 'a', name: 'w', bootstrap: { warmupSeconds: 0, timeoutSeconds: 300 } } },
      agent,
      'spec.checkpoint.bootstrap',
      'Forbidden',
    ],
    [
      'bootstrap and a path',
      { checkpoint: { path: '/var/lib/crs/checkpoints/x', bootstrap: { warmupSeconds: 0, timeoutSeconds: 300 } } },
      agent,
      'spec.checkpoint.bootstrap',
      'Forbidden',
    ],
    ['container without name', { checkpoint: { container: 'a' } }, agent, 'spec.checkpoint.name', 'Required'],
    ['relative path', { checkpoint: { path: 'checkpoints/x' } }, agent, 'spec.checkpoint.path', 'Invalid'],
    ['.. in path', { checkpoint: { path: '/var/lib/crs/checkpoints/../../etc' } }, agent, 'spec.checkpoint.path', 'Invalid'],
    ['path outside the root', { checkpoint: { path: '/etc/shadow-dir' } }, agent, 'spec.checkpoint.path', 'Forbidden'],
    ['path on a sibling with the root as prefix', { checkpoint: { path: '/var/lib/crs/checkpoints-evil/x' } }, agent, 'spec.checkpoint.path', 'Forbidden'],
    ['path equal to the root', { checkpoint: { path: '/var/lib/crs/checkpoints/' } }, agent, 'spec.checkpoint.path', 'Forbidden'],
    ['path without a checkpoint root', { checkpoint: { path: '/var/lib/crs/checkpoints/x' } }, {}, 'spec.checkpoint.path', 'Forbidden'],
    ['empty image', { template: { image: ' ' } }, agent, 'spec.template.image', 'Required'],
    [
      'reserved label',
      { template: { image: 'i', labels: { 'checkpoint.dev/owner-uid': 'x' } } },
      agent,
      'spec.template.labels[checkpoint.dev/owner-uid]',
      'Forbidden',
    ],
    [
      'memory below Docker minimum',
      { template: { image: 'i', resources: { limits: { memory: '4Mi' } } } },
      agent,
      'spec.template.resources.limits.memory',
      'OutOfRange',
    ],
    [
      'memory not a quantity',
      { template: { image: 'i', resources: { limits: { memory: 'lots' } } } },
      agent,
      'spec.template.resources.limits.memory',
      'Invalid',
    ],
    ['cpu above the host', { template: { image: 'i', resources: { limits: { cpu: '2500m' } } } }, agent, 'spec.template.resources.limits.cpu', 'OutOfRange'],
    ['cpu below Docker minimum', { template: { image: 'i', resources: { limits: { cpu: '5m' } } } }, agent, 'spec.template.resources.limits.cpu', 'OutOfRange'],
    [
      'maxConcurrent 11',
      { restore: { maxConcurrent: 11, timeoutSeconds: 120, maxAttempts: 5, fallback: 'None' } },
      agent,
      'spec.restore.maxConcurrent',
      'OutOfRange',
    ],
    [
      'maxConcurrent 0',
      { restore: { maxConcurrent: 0, timeoutSeconds: 120, maxAttempts: 5, fallback: 'None' } },
      agent,
      'spec.restore.maxConcurrent',
      'OutOfRange',
    ],
    ['timeout 0', { restore: { maxConcurrent: 1, timeoutSeconds: 0, maxAttempts: 5, fallback: 'None' } }, agent, 'spec.restore.timeoutSeconds', 'OutOfRange'],
    ['no attempts', { restore: { maxConcurrent: 1, timeoutSeconds: 1, maxAttempts: 0, fallback: 'None' } }, agent, 'spec.restore.maxAttempts', 'OutOfRange'],
    ['negative replicas', { replicas: -1 }, agent, 'spec.replicas', 'OutOfRange'],
  ])('%s: reports %s', (_title, overrides, agentLimits, field, code) => {
    const problems = validateSpec(spec(overrides), agentLimits);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ field, code });
    expect(problems[0]?.message.length).toBeGreaterThan(10);
  });

  it('without hostCpus, does not cap the CPU limit', () => {
    const big = spec({ template: { image: 'i', resources: { limits: { cpu: '64' } } } });
    expect(validateSpec(big, { checkpointRoot: '/x' })).toEqual([]);
  });

  it('reports every problem at once, and assertValidSpec throws them as a typed error', () => {
    const bad = spec({
      checkpoint: { container: 'a' },
      template: { image: '', resources: { limits: { memory: '1Ki' } } },
    });
    expect(validateSpec(bad, agent).map((p) => p.field)).toEqual(['spec.checkpoint.name', 'spec.template.image', 'spec.template.resources.limits.memory']);
    try {
      assertValidSpec(bad, agent);
      expect.unreachable('assertValidSpec accepted a bad spec');
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidSpecError);
      expect((error as InvalidSpecError).code).toBe('InvalidSpec');
      expect((error as InvalidSpecError).problems).toHaveLength(3);
      expect((error as Error).message).toContain('spec.checkpoint.name: ');
    }
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level, drops undefined members, keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1], c: undefined, b: 'x' } })).toBe('{"a":{"b":"x","d":[3,1]},"b":1}');
  });
});

describe('templateHash', () => {
  const base = spec();

  it('is 10 lowercase hex characters and stable across calls', () => {
    const hash = templateHash(base);
    expect(hash).toMatch(/^[0-9a-f]{10}$/);
    expect(templateHash(structuredClone(base))).toBe(hash);
  });

  it('pins the value for a known input, so a change of algorithm is a visible decision', () => {
    // Changing this value makes every running replica look outdated after an upgrade. It is the first
    // 10 hex of: printf '%s' '{"checkpoint":{"container":"app-template","name":"warm"},"template":{"image":"img"}}' | sha256sum
    const known = { checkpoint: { container: 'app-template', name: 'warm' }, template: { image: 'img' } };
    expect(templateHash(known)).toBe('f2685a65ad');
  });

  it('ignores key order and undefined members', () => {
    const reordered: CheckpointReplicaSetSpec = {
      restore: base.restore,
      template: { resources: { limits: { cpu: '500m', memory: '512Mi' } }, image: 'crs-sample-app:latest', user: undefined },
      checkpoint: { name: 'warm', container: 'app-template' },
      replicas: 45,
    };
    expect(templateHash(reordered)).toBe(templateHash(base));
  });

  it('ignores what does not change a replica: replicas, restore policy, nodeSelector, paused', () => {
    const scaled = spec({
      replicas: 3,
      paused: true,
      nodeSelector: { disk: 'ssd' },
      restore: { maxConcurrent: 1, timeoutSeconds: 5, maxAttempts: 1, fallback: 'ColdStart' },
    });
    expect(templateHash(scaled)).toBe(templateHash(base));
  });

  it.each<[string, Partial<CheckpointReplicaSetSpec>]>([
    ['image', { template: { ...base.template, image: 'other:1' } }],
    ['env', { template: { ...base.template, env: [{ name: 'A', value: '1' }] } }],
    ['arg order', { template: { ...base.template, args: ['b', 'a'] } }],
    ['memory', { template: { ...base.template, resources: { limits: { memory: '1Gi' } } } }],
    ['checkpoint name', { checkpoint: { container: 'app-template', name: 'cold' } }],
    ['checkpoint source', { checkpoint: { path: '/var/lib/crs/checkpoints/warm' } }],
  ])('changes when %s changes', (_what, overrides) => {
    expect(templateHash(spec(overrides))).not.toBe(templateHash(base));
  });

  it('tells argument orders apart', () => {
    const ab = spec({ template: { image: 'i', args: ['a', 'b'] } });
    const ba = spec({ template: { image: 'i', args: ['b', 'a'] } });
    expect(templateHash(ab)).not.toBe(templateHash(ba));
  });
});
