import { describe, expect, it } from 'vitest';
import { ATTEMPT, NODE, OWNER_NAME, OWNER_NAMESPACE, OWNER_UID, REPLICA_ID, START_MODE, TEMPLATE_HASH } from '../../../controller/api/labels.js';
import { buildCreateOptions, parseQuantity, replicaContainerName, validateReplicaSpec } from '../../../controller/engine/container-spec.js';
import { EngineError } from '../../../controller/engine/errors.js';
import type { ReplicaSpec } from '../../../controller/engine/types.js';

function spec(over: Partial<ReplicaSpec> = {}): ReplicaSpec {
  return {
    owner: { uid: '0b6e1f6c-1111-4c4c-9c9c-123456789abc', namespace: 'team-a', name: 'web' },
    node: 'node-1',
    replicaId: 'r7',
    attempt: 2,
    templateHash: 'abc123',
    template: { image: 'crs-sample-app:latest' },
    checkpoint: { container: 'app-template', name: 'warm' },
    ...over,
  };
}

function invalidField(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('InvalidSpec');
    return (err as EngineError).message;
  }
  throw new Error('expected an InvalidSpec error');
}

describe('replicaContainerName', () => {
  it('is deterministic, Docker-valid and carries namespace, name, replica, attempt and a uid hash', () => {
    const a = replicaContainerName(spec());
    expect(a).toBe(replicaContainerName(spec()));
    expect(a).toMatch(/^crs-team-a-web-r7-a2-[0-9a-f]{8}$/);
    expect(a).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/);
  });

  it('differs between resources of the same name (other uid), attempts and replicas', () => {
    const base = replicaContainerName(spec());
    expect(replicaContainerName(spec({ owner: { uid: 'other-uid', namespace: 'team-a', name: 'web' } }))).not.toBe(base);
    expect(replicaContainerName(spec({ attempt: 3 }))).not.toBe(base);
    expect(replicaContainerName(spec({ replicaId: 'r8' }))).not.toBe(base);
  });

  it('stays short and valid for a 253-character dotted name', () => {
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(70)}`;
    const name = replicaContainerName(spec({ owner: { uid: 'u', namespace: 'n'.repeat(63), name: long } }));
    expect(name.length).toBeLessThanOrEqual(120);
    expect(name).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/);
  });
});

describe('validateReplicaSpec', () => {
  it('accepts a good spec', () => {
    expect(() => validateReplicaSpec(spec())).not.toThrow();
  });
  it.each([
    [{ replicaId: 'R_1' }, 'replicaId'],
    [{ replicaId: 'a'.repeat(13) }, 'replicaId'],
    [{ attempt: 0 }, 'attempt'],
    [{ attempt: 1.5 }, 'attempt'],
    [{ template: { image: ' ' } }, 'template.image'],
    [{ template: { image: 'x', labels: { [OWNER_UID]: 'forged' } } }, `template.labels[${OWNER_UID}]`],
    [{ template: { image: 'x', env: [{ name: 'A=B', value: '1' }] } }, 'template.env[0].name'],
    [{ template: { image: 'x', resources: { limits: { memory: 'lots' } } } }, 'template.resources.limits.memory'],
    [{ template: { image: 'x', resources: { limits: { memory: '1Mi' } } } }, 'template.resources.limits.memory'],
    [{ template: { image: 'x', resources: { limits: { cpu: '-1' } } } }, 'template.resources.limits.cpu'],
    [{ owner: { uid: '', namespace: 'a', name: 'b' } }, 'owner.uid'],
  ] as [Partial<ReplicaSpec>, string][])('refuses %j naming %s', (over, field) => {
    expect(invalidField(() => validateReplicaSpec(spec(over)))).toContain(`${field}:`);
  });
});

describe('parseQuantity', () => {
  it.each([
    ['512Mi', 512 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['1.5G', 1.5e9],
    ['250m', 0.25],
    ['2', 2],
    ['1e3', 1000],
    ['100k', 1e5],
  ])('%s = %d', (text, value) => {
    expect(parseQuantity(text)).toBeCloseTo(value, 9);
  });
  it.each(['', 'Mi', '12XB', '-1', '1.2.3', 'abc'])('rejects %j', (text) => {
    expect(parseQuantity(text)).toBeUndefined();
  });
});

describe('buildCreateOptions', () => {
  it('maps the template with Kubernetes semantics and puts the ownership labels last', () => {
    const o = buildCreateOptions({
      spec: spec({
        template: {
          image: 'img:1',
          command: ['/app', '--x'],
          args: ['y'],
          env: [{ name: 'A', value: '1' }, { name: 'EMPTY' }],
          workingDir: '/w',
          user: '1000',
          labels: { team: 'a' },
          resources: { limits: { memory: '64Mi', cpu: '500m' } },
          stopGracePeriodSeconds: 2,
        },
      }),
      mode: 'restore',
      networkMode: 'none',
    });
    expect(o.name).toBe(replicaContainerName(spec()));
    expect(o.Image).toBe('img:1');
    expect(o.Entrypoint).toEqual(['/app', '--x']);
    expect(o.Cmd).toEqual(['y']);
    expect(o.Env).toEqual(['A=1', 'EMPTY=']);
    expect(o.WorkingDir).toBe('/w');
    expect(o.User).toBe('1000');
    expect(o.StopTimeout).toBe(2);
    expect(o.HostConfig).toEqual({ RestartPolicy: { Name: 'no' }, NetworkMode: 'none', Memory: 64 * 2 ** 20, NanoCpus: 5e8 });
    expect(o.Labels).toEqual({
      team: 'a',
      [OWNER_UID]: spec().owner.uid,
      [OWNER_NAMESPACE]: 'team-a',
      [OWNER_NAME]: 'web',
      [TEMPLATE_HASH]: 'abc123',
      [NODE]: 'node-1',
      [REPLICA_ID]: 'r7',
      [ATTEMPT]: '2',
      [START_MODE]: 'restore',
    });
  });

  it('labels a cold start as cold and leaves unset fields to the image', () => {
    const o = buildCreateOptions({ spec: spec(), mode: 'cold' });
    expect(o.Labels?.[START_MODE]).toBe('cold');
    expect(o.Entrypoint).toBeUndefined();
    expect(o.Cmd).toBeUndefined();
    expect(o.StopTimeout).toBeUndefined();
    expect(o.HostConfig).toEqual({ RestartPolicy: { Name: 'no' } });
  });
});
