// Option validation needs no Docker: the engine refuses bad settings before it connects.
import { describe, expect, it } from 'vitest';
import { systemClock, withDeadline } from '../../../controller/engine/clock.js';
import { DockerEngine, checkpointStartOptions, createDockerEngine } from '../../../controller/engine/docker-engine.js';
import { EngineError } from '../../../controller/engine/errors.js';

const base = { dockerSocket: '/run/none.sock', dockerRoot: '/var/lib/none', containerdTmp: '/tmp', node: 'n1' };

describe('engine options', () => {
  it.each([11, 0, 2.5, -1])('refuses concurrencyLimit %d with a typed error naming the field', (limit) => {
    expect(() => new DockerEngine({ ...base, concurrencyLimit: limit })).toThrow(EngineError);
    expect(() => new DockerEngine({ ...base, concurrencyLimit: limit })).toThrow(/^concurrencyLimit: .* from 1 to 10/);
  });
  it('defaults to 10 and accepts 1..10', () => {
    expect(new DockerEngine(base).concurrencyLimit).toBe(10);
    expect(new DockerEngine({ ...base, concurrencyLimit: 4 }).concurrencyLimit).toBe(4);
  });
  it('refuses relative paths and an empty node name', () => {
    expect(() => new DockerEngine({ ...base, dockerRoot: 'var/lib/docker' })).toThrow(/^dockerRoot: /);
    expect(() => new DockerEngine({ ...base, checkpointRoot: 'ckpt' })).toThrow(/^checkpointRoot: /);
    expect(() => new DockerEngine({ ...base, node: '' })).toThrow(/^node: /);
  });
  it('createDockerEngine refuses a data root that is not Docker-shaped', async () => {
    await expect(createDockerEngine({ ...base, dockerRoot: '/nonexistent-crs-root' })).rejects.toMatchObject({ code: 'InvalidSpec', message: expect.stringMatching(/^dockerRoot: /) });
  });
  it('a restore needs a positive timeout', async () => {
    const engine = new DockerEngine(base);
    const spec = {
      owner: { uid: 'u', namespace: 'n', name: 'x' },
      node: 'n1',
      replicaId: 'r1',
      attempt: 1,
      templateHash: 'h',
      template: { image: 'i' },
      checkpoint: { path: '/x' },
    };
    await expect(engine.restoreReplica(spec, { timeoutMs: 0 })).rejects.toMatchObject({ code: 'InvalidSpec', message: expect.stringMatching(/^timeoutMs: /) });
  });
});

describe('checkpointStartOptions', () => {
  it('sends the checkpoint as the query and an empty body (Docker refuses a start body)', () => {
    expect(checkpointStartOptions('crs-restore')).toEqual({ _query: { checkpoint: 'crs-restore' }, _body: {} });
  });
});

describe('withDeadline', () => {
  it('aborts with the typed timeout reason, or follows the parent', async () => {
    const d = withDeadline(systemClock, 5, () => new EngineError('RestoreTimeout', 'late'));
    await new Promise((r) => d.signal.addEventListener('abort', r));
    expect((d.signal.reason as EngineError).code).toBe('RestoreTimeout');
    const parent = new AbortController();
    const d2 = withDeadline(systemClock, 60_000, () => new EngineError('RestoreTimeout', 'late'), parent.signal);
    parent.abort(new EngineError('Aborted', 'stop'));
    expect((d2.signal.reason as EngineError).code).toBe('Aborted');
    d2.dispose();
  });
});
