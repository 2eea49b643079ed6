// The classifier against REAL error responses provoked on Docker 26.1.5 / containerd 1.7.24 /
// CRIU 4.1 (the engine's integration tests provoke each again). Only the shape dockerode gives
// them (statusCode + json.message) or Node gives them (code + syscall) is reproduced here.
import { describe, expect, it } from 'vitest';
import { EngineError, classifyError } from '../../../controller/engine/errors.js';
import { FAILURE_POLICY } from '../../../controller/engine/failure-policy.js';

function dockerError(statusCode: number, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) server error - ${message} `), { statusCode, json: { message } });
}
function systemError(code: string, syscall: string, message: string): Error {
  return Object.assign(new Error(message), { code, syscall, errno: -1 });
}

const ctx = { operation: 'restore of default/web replica a1 (attempt 1)', image: 'crs-sample-app:latest', dockerHost: 'unix:///run/crs-docker/docker.sock' };

const FIXTURES: { name: string; err: unknown; reason: string }[] = [
  {
    name: 'concurrent restores of identical copies (containerd content store race)',
    err: dockerError(
      500,
      'failed to upload checkpoint to containerd: commit failed: content sha256:f99ffac2730a59773400d8ee60ca882d82c741bf01cb69155892c8919ab7f9f9: already exists',
    ),
    reason: 'RestoreRace',
  },
  {
    name: 'start with a checkpoint name that is not there',
    err: dockerError(500, 'checkpoint nope does not exist for container /eng-exp-r2'),
    reason: 'CheckpointNotFound',
  },
  { name: 'create with an image that is not loaded', err: dockerError(404, 'No such image: no-such-image:latest'), reason: 'ImageNotFound' },
  {
    name: 'corrupt CRIU images',
    err: dockerError(
      500,
      'OCI runtime restore failed: criu failed: type RESTORE errno 0\nlog file: /run/crs-docker/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/2ad705b9394dfbb638b89d513c67947a00da831893b6fa7f5e935979e234b0a7/work/restore.log: unknown',
    ),
    reason: 'CriuFailed',
  },
  {
    name: 'restore into another image (restore.log said "File app has bad build-ID")',
    err: dockerError(
      500,
      'OCI runtime restore failed: criu failed: type NOTIFY errno 0\nlog file: /run/crs-docker/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/562e4fb80950901afcbf5349e6865e08a097a1f87ecd42120573327dfe8b17fe/work/restore.log: unknown',
    ),
    reason: 'CriuFailed',
  },
  {
    name: 'an empty checkpoint folder',
    err: dockerError(
      400,
      'OCI runtime restore failed: open /var/lib/crs-docker/containerd-tmp/ctrd-checkpoint3526407592/descriptors.json: no such file or directory: unknown',
    ),
    reason: 'CriuFailed',
  },
  {
    name: 'name clash',
    err: dockerError(
      409,
      'Conflict. The container name "/eng-exp-r1" is already in use by container "5e8e3eab160d19f15a5b3b1fee56be4a8bde55dc8ed8edad818bc766f74ce0cb". You have to remove (or rename) that container to be able to reuse that name.',
    ),
    reason: 'NameConflict',
  },
  {
    name: 'invalid container name',
    err: dockerError(400, 'Invalid container name (Bad Name!), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'),
    reason: 'InvalidSpec',
  },
  {
    name: 'the deprecated start body (dockerode start({checkpoint}))',
    err: dockerError(400, 'starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24'),
    reason: 'InvalidSpec',
  },
  {
    name: 'socket missing (engine not started)',
    err: systemError('ENOENT', 'connect', 'connect ENOENT /run/crs-docker/nope.sock'),
    reason: 'EngineUnavailable',
  },
  { name: 'engine gone mid-request', err: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), reason: 'EngineUnavailable' },
  { name: 'socket refuses', err: systemError('ECONNREFUSED', 'connect', 'connect ECONNREFUSED /run/crs-docker/docker.sock'), reason: 'EngineUnavailable' },
  { name: 'full disk while writing a copy', err: systemError('ENOSPC', 'write', 'ENOSPC: no space left on device, write'), reason: 'DiskFull' },
  {
    name: 'full disk inside Docker (ENVIRONMENT.md, 398 leaked restores)',
    err: dockerError(
      500,
      'failed to upload checkpoint to containerd: write /var/lib/crs-docker/containerd/daemon/io.containerd.content.v1.content/ingest/x/data: no space left on device',
    ),
    reason: 'DiskFull',
  },
  { name: 'Docker 1.13 over containerd limit (moby 29369)', err: dockerError(500, 'context deadline exceeded'), reason: 'RestoreTimeout' },
  { name: 'anything else', err: dockerError(500, 'something nobody has seen'), reason: 'Unknown' },
];

describe('classifyError', () => {
  it.each(FIXTURES)('$name -> $reason', ({ err, reason }) => {
    const e = classifyError(err, ctx);
    expect(e).toBeInstanceOf(EngineError);
    expect(e.code).toBe(reason);
    expect(e.transient).toBe(FAILURE_POLICY[e.code].retry);
    expect(e.message).toContain(ctx.operation);
    expect(e.cause).toBe(err);
  });

  it('never reads a missing file (fs ENOENT) as an unreachable engine', () => {
    const e = classifyError(systemError('ENOENT', 'open', "ENOENT: no such file or directory, open '/x'"), ctx);
    expect(e.code).toBe('Unknown');
  });

  it('passes an EngineError through unchanged', () => {
    const original = new EngineError('Aborted', 'stop');
    expect(classifyError(original, ctx)).toBe(original);
  });

  it('tells the person what to do: image name for ImageNotFound, socket for EngineUnavailable', () => {
    expect(classifyError(FIXTURES[2]?.err, ctx).message).toMatch(/crs-sample-app:latest is not on this node/);
    expect(classifyError(FIXTURES[9]?.err, ctx).message).toMatch(/unix:\/\/\/run\/crs-docker\/docker.sock is not reachable/);
  });

  it('marks races, timeouts, full disks and unreachable engines transient; CRIU and spec failures permanent', () => {
    const byReason = new Map(FIXTURES.map((f) => [f.reason, classifyError(f.err, ctx).transient]));
    expect(byReason.get('RestoreRace')).toBe(true);
    expect(byReason.get('RestoreTimeout')).toBe(true);
    expect(byReason.get('DiskFull')).toBe(true);
    expect(byReason.get('EngineUnavailable')).toBe(true);
    expect(byReason.get('CriuFailed')).toBe(false);
    expect(byReason.get('ImageNotFound')).toBe(false);
    expect(byReason.get('InvalidSpec')).toBe(false);
  });
});
