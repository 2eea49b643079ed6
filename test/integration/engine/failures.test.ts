// Every failure reason provoked for real against the Docker engine with CRIU, and the refusals
// (namespace not allowed, paths outside the checkpoint root, name clashes, an unwritable data root,
// no disk room): each gives a typed error and leaves no half-made container behind.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SOURCE_IMAGE_FILE } from '../../../controller/engine/checkpoint-placement.js';
import { replicaContainerName } from '../../../controller/engine/container-spec.js';
import type { DockerEngine } from '../../../controller/engine/docker-engine.js';
import type { EngineError } from '../../../controller/engine/errors.js';
import { testbed } from '../testbed.js';
import {
  containersOf,
  counters,
  docker,
  logsOf,
  makeSource,
  markedCopiesOf,
  markedCopiesOfOwner,
  newEngine,
  record,
  removeOwner,
  sleep,
  specFor,
  uid,
  type Source,
} from './helpers.js';

const bed = testbed();
const d = docker(bed);
let source: Source;
let closedSource: Source;
let engine: DockerEngine;
let tmp: string;
let checkpointRoot: string;
/** Path sources of namespace engine-it live only under <checkpoint root>/engine-it/. */
let nsRoot: string;
const owners: string[] = [];
const extraContainers: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

function owner(name: string, namespace = 'engine-it'): { uid: string; namespace: string; name: string } {
  const o = { uid: uid(), namespace, name };
  owners.push(o.uid);
  return o;
}

async function failure(p: Promise<unknown>): Promise<EngineError> {
  try {
    await p;
  } catch (err) {
    return err as EngineError;
  }
  throw new Error('expected the operation to fail');
}

/** Link counts of the source checkpoint's files: a refused restore must not have linked any. */
async function linkCounts(dir: string): Promise<number[]> {
  const names = (await fs.readdir(dir)).sort();
  return Promise.all(names.map(async (n) => (await fs.stat(path.join(dir, n))).nlink));
}

beforeAll(async () => {
  source = await makeSource(bed, 'crs-engine-it-fail-src', 'engine-it,other-team');
  closedSource = await makeSource(bed, 'crs-engine-it-fail-closed', undefined);
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'crs-engine-it-'));
  checkpointRoot = path.join(tmp, 'checkpoints');
  nsRoot = path.join(checkpointRoot, 'engine-it');
  await fs.mkdir(nsRoot, { recursive: true });
  engine = await newEngine(bed, { checkpointRoot });
});

afterAll(async () => {
  await engine?.close();
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  for (const u of owners) await removeOwner(bed, u);
  for (const id of extraContainers)
    await d
      .getContainer(id)
      .remove({ force: true })
      .catch(() => undefined);
  for (const n of ['crs-engine-it-fail-src', 'crs-engine-it-fail-closed'])
    await d
      .getContainer(n)
      .remove({ force: true })
      .catch(() => undefined);
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe('each failure reason, provoked for real', () => {
  it('CheckpointNotFound: a missing checkpoint name, a missing source container', async () => {
    const o = owner('missing-ckpt');
    const e1 = await failure(engine.checkSource(o, { container: source.name, name: 'no-such-checkpoint' }));
    expect(e1).toMatchObject({ code: 'CheckpointNotFound', transient: false });
    expect(e1.message).toMatch(/^checkpoint.name: container crs-engine-it-fail-src has no checkpoint no-such-checkpoint/);
    const e2 = await failure(
      engine.restoreReplica(specFor(source, o, 'r1', { checkpoint: { container: source.name, name: 'no-such-checkpoint' } }), { timeoutMs: 30_000 }),
    );
    expect(e2.code).toBe('CheckpointNotFound');
    const e3 = await failure(engine.checkSource(o, { container: 'crs-engine-it-no-such-container', name: 'warm' }));
    expect(e3).toMatchObject({ code: 'CheckpointNotFound', message: expect.stringMatching(/^checkpoint.container: no container/) });
    expect(await containersOf(bed, o.uid)).toEqual([]);
  });

  it('ImageNotFound: restore and cold start with an image that is not on the node', async () => {
    const o = owner('missing-image');
    const ckpt = path.join(nsRoot, 'image-test');
    await fs.cp(source.dir, ckpt, { recursive: true });
    // The folder records its image: a cold start of a path source is allowed only then (issue 9).
    await fs.writeFile(path.join(ckpt, SOURCE_IMAGE_FILE), source.imageId);
    const spec = specFor(source, o, 'r1', { template: { image: 'crs-engine-it-no-such-image:latest' }, checkpoint: { path: ckpt } });
    const e1 = await failure(engine.restoreReplica(spec, { timeoutMs: 30_000 }));
    expect(e1).toMatchObject({ code: 'ImageNotFound', transient: false });
    expect(e1.message).toContain('No such image: crs-engine-it-no-such-image:latest');
    const e2 = await failure(engine.coldStartReplica(spec, { timeoutMs: 30_000 }));
    expect(e2.code).toBe('ImageNotFound');
    expect(await containersOf(bed, o.uid)).toEqual([]);
  });

  it('CriuFailed: a corrupt checkpoint; the half-made container and its copies are removed', async () => {
    const o = owner('corrupt');
    const ckpt = path.join(nsRoot, 'corrupt');
    await fs.cp(source.dir, ckpt, { recursive: true });
    for (const f of await fs.readdir(ckpt)) if (/^(core|pstree)/.test(f)) await fs.writeFile(path.join(ckpt, f), 'garbage');
    const events = record(engine);
    const e = await failure(engine.restoreReplica(specFor(source, o, 'r1', { checkpoint: { path: ckpt } }), { timeoutMs: 60_000 }));
    expect(e).toMatchObject({ code: 'CriuFailed', transient: false });
    expect(e.message).toMatch(/criu failed/);
    expect(events.find((ev) => ev.type === 'restore.failed')).toMatchObject({ reason: 'CriuFailed', transient: false });
    expect(await containersOf(bed, o.uid)).toEqual([]);
    // containerd unpacked (and leaked) the copy before CRIU failed: the engine reclaimed it.
    expect(events.some((ev) => ev.type === 'hygiene.reclaimed')).toBe(true);
    expect(await markedCopiesOfOwner(bed, o.uid)).toEqual([]);
  });

  it('RestoreTimeout: a restore that does not finish in time is cut short and cleaned up', async () => {
    const o = owner('timeout');
    const e = await failure(engine.restoreReplica(specFor(source, o, 'r1'), { timeoutMs: 150 }));
    expect(e).toMatchObject({ code: 'RestoreTimeout', transient: true });
    expect(e.message).toMatch(/did not finish within 150 ms/);
    expect(await containersOf(bed, o.uid)).toEqual([]);
    // Docker may still unpack the copy after the engine gave up; the next sweep reclaims it.
    for (let i = 0; i < 30 && (await markedCopiesOfOwner(bed, o.uid)).length > 0; i++) {
      await engine.sweep();
      await sleep(100);
    }
    expect(await markedCopiesOfOwner(bed, o.uid)).toEqual([]);
  });

  it('EngineUnavailable: the engine goes away in the middle of a restore; sweep() finishes the clean-up', async () => {
    const o = owner('engine-gone');
    const proxyPath = path.join(tmp, 'proxy.sock');
    const proxy = await startProxy(bed.dockerSocket, proxyPath, (head) => /POST \S*\/containers\/[0-9a-f]+\/start\?checkpoint=/.test(head));
    cleanups.push(() => proxy.close());
    const viaProxy = await newEngine(bed, { dockerSocket: proxyPath, sweepOnStart: false });
    const e = await failure(viaProxy.restoreReplica(specFor(source, o, 'r1'), { timeoutMs: 60_000 }));
    expect(proxy.killed(), 'the proxy should have cut the start request').toBe(true);
    expect(e).toMatchObject({ code: 'EngineUnavailable', transient: true });
    expect(e.message).toMatch(/not reachable or went away/);
    // The engine could not remove what it made while unreachable: it remembers it.
    expect(viaProxy.pendingRemovalIds).toHaveLength(1);
    const [leftover] = await containersOf(bed, o.uid);
    expect(leftover?.Id).toBe(viaProxy.pendingRemovalIds[0]);

    const back = await startProxy(bed.dockerSocket, proxyPath, () => false);
    cleanups.push(() => back.close());
    // Once the engine is back, sweep() removes the container and the copy containerd leaked for it.
    for (let i = 0; i < 50; i++) {
      await viaProxy.sweep();
      if (viaProxy.pendingRemovalIds.length === 0 && (await markedCopiesOfOwner(bed, o.uid)).length === 0) break;
      await sleep(100);
    }
    expect(viaProxy.pendingRemovalIds).toEqual([]);
    expect(await containersOf(bed, o.uid)).toEqual([]);
    expect(await markedCopiesOf(bed, [leftover?.Id as string])).toEqual([]);
    expect(await markedCopiesOfOwner(bed, o.uid)).toEqual([]);
    await viaProxy.close();
  });

  it('Aborted: the caller cancels a queued restore and a running one; nothing is left', async () => {
    const o = owner('abort');
    const single = await newEngine(bed, { concurrencyLimit: 1, sweepOnStart: false });
    const events = record(single);
    const running = new AbortController();
    const queued = new AbortController();
    const first = single.restoreReplica(specFor(source, o, 'r1'), { timeoutMs: 60_000, signal: running.signal });
    const second = single.restoreReplica(specFor(source, o, 'r2'), { timeoutMs: 60_000, signal: queued.signal });
    for (let i = 0; i < 100 && !events.some((e) => e.type === 'restore.started'); i++) await sleep(10);
    expect(single.inFlight).toBe(1);
    queued.abort(new Error('resource deleted'));
    await expect(second).rejects.toMatchObject({ code: 'Aborted', message: expect.stringContaining('resource deleted') });
    running.abort(new Error('resource deleted'));
    const outcome: unknown = await first.then(
      (replica) => replica,
      (err: unknown) => err,
    );
    await single.close();
    expect(single.inFlight).toBe(0);
    // The abort came right after the slot was taken, long before a restore finishes (~0.5 s or more).
    expect(outcome).toMatchObject({ code: 'Aborted' });
    expect(await containersOf(bed, o.uid)).toEqual([]);
    expect(events.filter((ev) => ev.type === 'restore.failed').map((ev) => (ev as { reason: string }).reason)).toEqual(['Aborted', 'Aborted']);
  });

  it('EngineUnavailable: no engine on the socket at all', async () => {
    const e = await failure(newEngine(bed, { dockerSocket: path.join(tmp, 'nobody-listens.sock') }));
    expect(e).toMatchObject({ code: 'EngineUnavailable' });
  });
});

describe('where checkpoints may come from', () => {
  it('a namespace the source container does not allow is refused, and nothing is linked', async () => {
    const before = await linkCounts(source.dir);
    const o = owner('tenant-b', 'tenant-b');
    const e = await failure(engine.restoreReplica(specFor(source, o, 'r1'), { timeoutMs: 30_000 }));
    expect(e).toMatchObject({ code: 'CheckpointNotAllowed', transient: false });
    expect(e.message).toMatch(/does not allow restores into namespace tenant-b/);
    await expect(engine.checkSource(o, { container: source.name, name: source.checkpoint })).rejects.toMatchObject({ code: 'CheckpointNotAllowed' });
    // A source without the label allows nobody.
    const o2 = owner('any', 'engine-it');
    await expect(engine.checkSource(o2, { container: closedSource.name, name: closedSource.checkpoint })).rejects.toMatchObject({
      code: 'CheckpointNotAllowed',
      message: expect.stringMatching(/is absent/),
    });
    expect(await containersOf(bed, o.uid)).toEqual([]);
    expect(await linkCounts(source.dir)).toEqual(before);
    // The allowed namespaces do pass the check.
    await engine.checkSource(owner('ok', 'other-team'), { container: source.name, name: source.checkpoint });
  });

  it('paths outside the checkpoint root, with .., or through a symlink are refused before anything is made', async () => {
    const o = owner('paths');
    await fs.symlink('/etc', path.join(nsRoot, 'etc-link'));
    for (const p of ['/etc', `${checkpointRoot}/../..`, `${nsRoot}/image-test/../../x`, path.join(nsRoot, 'etc-link')]) {
      const e = await failure(engine.restoreReplica(specFor(source, o, 'r1', { checkpoint: { path: p } }), { timeoutMs: 30_000 }));
      expect(e.code, p).toBe('CheckpointNotAllowed');
      expect(e.message).toMatch(/^checkpoint.path: /);
    }
    const noRoot = await newEngine(bed, { sweepOnStart: false });
    await expect(noRoot.checkSource(o, { path: path.join(nsRoot, 'image-test') })).rejects.toMatchObject({
      code: 'CheckpointNotAllowed',
      message: /no checkpoint root/,
    });
    await noRoot.close();
    expect(await containersOf(bed, o.uid)).toEqual([]);
  });

  it('a path source under the root restores (copied or linked) and continues the counter', async () => {
    const o = owner('path-ok');
    const ckpt = path.join(nsRoot, 'good');
    await fs.cp(source.dir, ckpt, { recursive: true });
    const r = await engine.restoreReplica(specFor(source, o, 'r1', { checkpoint: { path: ckpt } }), { timeoutMs: 60_000 });
    expect(r).toMatchObject({ ready: true, startMode: 'restore' });
    let seen: number[] = [];
    for (let i = 0; i < 50 && seen.length === 0; i++) {
      await sleep(200);
      seen = counters(await logsOf(d, r.containerId));
    }
    expect(seen[0], 'first counter of the replica restored from a path source').toBeGreaterThan(source.lastCounter);

    // On another filesystem a hard link is impossible (EXDEV): the engine falls back to a byte copy.
    const other = path.join(nsRoot, 'on-tmpfs');
    await fs.mkdir(other);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', other]);
    cleanups.push(async () => {
      execFileSync('umount', [other]);
    });
    await fs.cp(source.dir, path.join(other, 'ckpt'), { recursive: true });
    await expect(fs.link(path.join(other, 'ckpt', 'inventory.img'), path.join(bed.dockerRoot, `crs-it-link-probe-${process.pid}`))).rejects.toMatchObject({
      code: 'EXDEV',
    });
    const copied = await engine.restoreReplica(specFor(source, o, 'r2', { checkpoint: { path: path.join(other, 'ckpt') } }), { timeoutMs: 60_000 });
    expect(copied).toMatchObject({ ready: true, startMode: 'restore' });
  });
});

describe('bad input', () => {
  it('a name clash gives NameConflict, leaves the other container alone and makes nothing', async () => {
    const o = owner('clash');
    const spec = specFor(source, o, 'r1');
    const squatter = await d.createContainer({ name: replicaContainerName(spec), Image: source.imageId, HostConfig: { NetworkMode: 'none' } });
    extraContainers.push(squatter.id);
    const e = await failure(engine.restoreReplica(spec, { timeoutMs: 30_000 }));
    expect(e).toMatchObject({ code: 'NameConflict', transient: true });
    expect(e.message).toMatch(/is already in use/);
    expect((await squatter.inspect()).State.Status).toBe('created');
    expect(await containersOf(bed, o.uid)).toEqual([]);
  });

  it('an unwritable data root is refused when the engine is made', async () => {
    const ro = path.join(tmp, 'ro-root');
    await fs.mkdir(ro);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', ro]);
    cleanups.push(async () => {
      execFileSync('umount', [ro]);
    });
    await fs.mkdir(path.join(ro, 'containers'));
    execFileSync('mount', ['-o', 'remount,ro', ro]);
    const e = await failure(newEngine(bed, { dockerRoot: ro }));
    expect(e).toMatchObject({ code: 'InvalidSpec', message: expect.stringMatching(/^dockerRoot: .* is not a writable directory \(EROFS\)/) });
  });

  it('a concurrency limit above 10 is refused', async () => {
    await expect(newEngine(bed, { concurrencyLimit: 11 })).rejects.toMatchObject({ code: 'InvalidSpec', message: /^concurrencyLimit: 11/ });
  });

  it('a template image other than the checkpoint source image is refused before any upload', async () => {
    const o = owner('other-image');
    const env = { ...process.env, DOCKER_HOST: bed.dockerHost };
    // A real, different image (an empty rootfs): CRIU would fail with "bad build-ID" after a full upload.
    execFileSync('bash', ['-c', 'tar -cf - -T /dev/null | docker import - crs-engine-it-other:latest'], { env });
    cleanups.push(async () => void execFileSync('docker', ['rmi', '-f', 'crs-engine-it-other:latest'], { env }));
    const e = await failure(engine.restoreReplica(specFor(source, o, 'r1', { template: { image: 'crs-engine-it-other:latest' } }), { timeoutMs: 30_000 }));
    expect(e).toMatchObject({ code: 'InvalidSpec', message: expect.stringMatching(/^template.image: crs-engine-it-other:latest is sha256:/) });
    expect(await containersOf(bed, o.uid)).toEqual([]);
    // The source's image under another tag is fine: the check is by image id, not by name.
    execFileSync('docker', ['tag', source.imageId, 'crs-engine-it-same:latest'], { env });
    cleanups.push(async () => void execFileSync('docker', ['rmi', 'crs-engine-it-same:latest'], { env }));
    const r = await engine.restoreReplica(specFor(source, o, 'r2', { template: { image: 'crs-engine-it-same:latest' } }), { timeoutMs: 60_000 });
    expect(r.ready).toBe(true);
  });
});

describe('disk room', () => {
  it('waits (and says so) while the disks lack room, restores once room returns, and refuses with DiskFull at the deadline', async () => {
    const o = owner('disk');
    const headroom = await engine.diskHeadroomBytes();
    expect(headroom).toBeGreaterThan(0);
    const tight = await newEngine(bed, { diskReserveBytes: headroom + 100 * 2 ** 30, diskPollMs: 100, sweepOnStart: false });
    const events = record(tight);

    const refused = await failure(tight.restoreReplica(specFor(source, o, 'r1'), { timeoutMs: 1_000 }));
    expect(refused).toMatchObject({ code: 'DiskFull', transient: true });
    expect(refused.message).toMatch(/^waited \d+ s for \d+ MiB of free disk on /);
    expect(await containersOf(bed, o.uid)).toEqual([]);

    const pending = tight.restoreReplica(specFor(source, o, 'r2'), { timeoutMs: 60_000 });
    for (let i = 0; i < 100 && events.filter((e) => e.type === 'disk.waiting').length < 3; i++) await sleep(50);
    const waiting = events.filter((e) => e.type === 'disk.waiting');
    expect(waiting.length).toBeGreaterThanOrEqual(3);
    expect(waiting[0]).toMatchObject({ availableBytes: 0, path: expect.any(String) });
    expect((waiting[0] as { neededBytes: number }).neededBytes).toBeGreaterThan(3 * 10 * 2 ** 20);
    tight.setDiskReserveBytes(0);
    const r = await pending;
    expect(r).toMatchObject({ ready: true, replicaId: 'r2' });
    await tight.close();
  });
});

interface Proxy {
  close(): Promise<void>;
  killed(): boolean;
}

/**
 * A unix-socket proxy in front of the real Docker socket. When a request whose head matches `cut`
 * passes through, it is forwarded and then every connection is dropped and the listener closed: to
 * the engine, Docker went away mid-operation.
 */
function startProxy(target: string, listenPath: string, cut: (head: string) => boolean): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  let killed = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      if (!killed && cut(chunk.toString('latin1'))) {
        killed = true;
        setTimeout(() => {
          for (const s of sockets) s.destroy();
          server.close();
        }, 20);
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    for (const s of [client, upstream]) {
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    fs.rm(listenPath, { force: true }).then(
      () =>
        server.listen(listenPath, () =>
          resolve({
            killed: () => killed,
            close: () =>
              new Promise<void>((r) => {
                for (const s of sockets) s.destroy();
                if (server.listening) server.close(() => r());
                else r();
              }),
          }),
        ),
      reject,
    );
  });
}
