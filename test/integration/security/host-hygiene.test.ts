// Attacks on host hygiene, against the real engine and real files. The agent runs as root and sweeps
// --containerd-tmp, which the shipped DaemonSet used to point at the host's world-writable /tmp: a
// local user (here: uid 65534, "nobody") can plant folders named like containerd's leaks there.
// Each test stands a sticky world-writable folder in for /tmp and points an engine at it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { markerFileName } from '../../../controller/engine/checkpoint-placement.js';
import { testbed } from '../testbed.js';
import { sample, startAgent, type RunningAgent } from '../support/agent.js';
import { NODE, containersOf, makeSource, newEngine, record, removeOwner, specFor, uid, type Source } from '../engine/helpers.js';

const bed = testbed();
const NOBODY = 65534;
const FILES = 300;
// On the code before the fix, victim files were lost by round 6 to 8 on a loaded 2-core machine.
const ROUNDS = 25;
let hostTmp = '';
let victim = '';
let source: Source;
const owners: string[] = [];
const racers: ChildProcess[] = [];

beforeAll(async () => {
  source = await makeSource(bed, 'crs-security-hygiene-src', '*');
});

afterAll(async () => {
  for (const u of owners) await removeOwner(bed, u);
  const { default: Docker } = await import('dockerode');
  await new Docker({ socketPath: bed.dockerSocket })
    .getContainer(source.id)
    .remove({ force: true })
    .catch(() => undefined);
});

async function freshHostTmp(): Promise<void> {
  hostTmp = await fs.mkdtemp(path.join(os.tmpdir(), 'crs-fake-host-tmp-'));
  await fs.chmod(hostTmp, 0o1777); // like /tmp
  // Root's files in a folder only root may change: what the attacker wants the agent to delete.
  victim = await fs.mkdtemp(path.join(os.tmpdir(), 'crs-victim-'));
  await fs.chmod(victim, 0o755);
  for (let i = 0; i < FILES; i++) await fs.writeFile(path.join(victim, `f${i}`), 'precious');
}

afterEach(async () => {
  for (const r of racers.splice(0)) r.kill('SIGKILL');
  for (const dir of [hostTmp, victim]) if (dir !== '') await fs.rm(dir, { recursive: true, force: true });
});

/** A marker naming a container that does not exist: the sweep deems such a copy reclaimable. */
function fakeMarker(containerId: string): string {
  return JSON.stringify({ v: 1, containerId, ownerUid: 'planted', namespace: 'x', name: 'x', replicaId: 'r', attempt: 1, node: NODE });
}

/** A planted leak: ctrd-checkpoint<digits>/{marker, sub/f0..f299}, owned by `owner`, built aside and renamed into place. */
async function plant(name: string, owner: number, mode: number): Promise<void> {
  const staging = await fs.mkdtemp(path.join(hostTmp, 'staging-'));
  const sub = path.join(staging, 'sub');
  await fs.mkdir(sub);
  const id = randomBytes(32).toString('hex');
  await fs.writeFile(path.join(staging, markerFileName(id)), fakeMarker(id));
  for (let i = 0; i < FILES; i++) await fs.writeFile(path.join(sub, `f${i}`), 'bait');
  for (const p of [staging, sub]) await fs.chown(p, owner, owner);
  await fs.chmod(staging, mode);
  await fs.rename(staging, path.join(hostTmp, name));
}

/**
 * A separate process that keeps swapping `<dir>/sub` for a symlink to the victim folder and back,
 * as fast as it can.
 */
function startRacer(dir: string, asUid: number): ChildProcess {
  // Half of the time `sub` is the symlink; random sub-millisecond dwell times hit every phase of a walk.
  const code = `
    const fs = require('fs');
    const [dir, victim] = process.argv.slice(1);
    const sub = dir + '/sub', aside = dir + '/aside';
    const nap = new Int32Array(new SharedArrayBuffer(4));
    const dwell = () => { const until = process.hrtime.bigint() + BigInt(Math.floor(Math.random() * 400000)); while (process.hrtime.bigint() < until); };
    for (;;) {
      try { fs.renameSync(sub, aside); fs.symlinkSync(victim, sub); } catch { Atomics.wait(nap, 0, 0, 1); }
      dwell();
      try { fs.unlinkSync(sub); fs.renameSync(aside, sub); } catch {}
      dwell();
    }`;
  const child = spawn(process.execPath, ['-e', code, dir, victim], { uid: asUid, gid: asUid, cwd: '/', stdio: 'ignore' });
  racers.push(child);
  return child;
}

/** A racer on dir, once it is seen to have swapped `sub` for the symlink (else the test would prove nothing). */
async function racing(dir: string, asUid: number): Promise<ChildProcess> {
  const racer = startRacer(dir, asUid);
  for (let i = 0; i < 5000; i++) {
    const st = await fs.lstat(path.join(dir, 'sub')).catch(() => undefined);
    if (st?.isSymbolicLink()) return racer;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`the racer never swapped ${dir}/sub for a symlink`);
}

async function victimFiles(): Promise<number> {
  return (await fs.readdir(victim)).length;
}

describe('a planted leak whose subfolder is swapped for a symlink during the sweep', () => {
  it('never makes the sweep delete files elsewhere (folder planted by a local user, racing as that user)', async () => {
    await freshHostTmp();
    const engine = await newEngine(bed, { containerdTmp: hostTmp, sweepOnStart: false });
    const events = record(engine);
    for (let round = 0; round < ROUNDS; round++) {
      const name = `ctrd-checkpoint${Date.now()}${round}`;
      await plant(name, NOBODY, 0o755);
      const racer = await racing(path.join(hostTmp, name), NOBODY);
      await engine.sweep();
      racer.kill('SIGKILL');
      expect(await victimFiles(), `round ${round}`).toBe(FILES);
    }
    // Not ours to touch at all: the folder stays, refused and counted.
    expect(events).toContainEqual(expect.objectContaining({ type: 'hygiene.ignored', reason: 'folder_not_trusted' }));
    expect(events.filter((e) => e.type === 'hygiene.reclaimed')).toEqual([]);
    await engine.close();
  });

  it('never follows the swapped symlink even in a folder that passes the ownership check (root-owned, 0700)', async () => {
    await freshHostTmp();
    const engine = await newEngine(bed, { containerdTmp: hostTmp, sweepOnStart: false });
    const events = record(engine);
    let reclaimed = 0;
    engine.onEvent((e) => {
      if (e.type === 'hygiene.reclaimed') reclaimed += e.paths;
    });
    for (let round = 0; round < ROUNDS; round++) {
      const name = `ctrd-checkpoint${Date.now()}${round}`;
      await plant(name, 0, 0o700);
      const racer = await racing(path.join(hostTmp, name), 0);
      await engine.sweep();
      racer.kill('SIGKILL');
      expect(await victimFiles(), `round ${round}`).toBe(FILES);
    }
    // The walk did remove the planted folders (this is the path real leaks take).
    expect(reclaimed).toBeGreaterThan(0);
    expect(events.some((e) => e.type === 'hygiene.ignored' && e.reason === 'folder_not_trusted')).toBe(false);
    await engine.close();
  });
});

/** Rejects when p does not settle within ms: a hung sweep fails the test instead of hanging it. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('planted markers that would block or flood a read', () => {
  const planted: string[] = [];
  afterAll(async () => {
    for (const dir of planted) await fs.rm(dir, { recursive: true, force: true });
  });

  it('a FIFO marker and a marker symlinked to /dev/zero: sweeps return promptly, the engine keeps restoring, memory stays flat', async () => {
    // Root-owned 0700 folders in containerd's own tmp: they pass the folder check, so the marker checks are what is tested.
    const stamp = Date.now();
    const fifoDir = path.join(bed.containerdTmp, `ctrd-checkpoint${stamp}1`);
    const zeroDir = path.join(bed.containerdTmp, `ctrd-checkpoint${stamp}2`);
    for (const dir of [fifoDir, zeroDir]) {
      await fs.mkdir(dir, { mode: 0o700 });
      planted.push(dir);
    }
    execFileSync('mkfifo', [path.join(fifoDir, markerFileName(randomBytes(32).toString('hex')))]);
    await fs.symlink('/dev/zero', path.join(zeroDir, markerFileName(randomBytes(32).toString('hex'))));

    const engine = await within(10_000, 'creating the engine (its start-up sweep)', newEngine(bed));
    const events = record(engine);
    const rssBefore = process.memoryUsage().rss;
    // More sweeps than libuv has threads (4): each blocked read used to pin one thread for good.
    for (let i = 0; i < 6; i++) await within(10_000, `sweep ${i + 1}`, engine.sweep());
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 2 ** 20);
    expect(events.filter((e) => e.type === 'hygiene.ignored' && e.reason === 'marker_not_regular_file').length).toBeGreaterThanOrEqual(12);

    const ownerUid = uid();
    owners.push(ownerUid);
    const replica = await within(
      60_000,
      'a restore after the sweeps',
      engine.restoreReplica(specFor(source, { uid: ownerUid, namespace: 'security-it', name: 'fifo' }, 'r1'), { timeoutMs: 50_000 }),
    );
    expect(replica.ready).toBe(true);
    expect(await containersOf(bed, ownerUid)).toHaveLength(1);
    await within(10_000, 'ping', engine.ping());
    // Nothing planted was touched.
    expect((await fs.readdir(fifoDir)).length + (await fs.readdir(zeroDir)).length).toBe(2);
    await engine.close();
  });
});

describe('a world-writable --containerd-tmp', () => {
  it("the agent warns at start and exports crs_containerd_tmp_world_writable 1 (0 for the bed's root-only folder)", async () => {
    await freshHostTmp(); // 1777, like the host's /tmp
    const agents: RunningAgent[] = [];
    try {
      for (const [containerdTmp, want] of [
        [hostTmp, 1],
        [bed.containerdTmp, 0],
      ] as const) {
        const nodeName = `hygiene-it-${want}`;
        const agent = await startAgent(bed, { nodeName, containerdTmp });
        agents.push(agent);
        let seen: number | undefined;
        for (let i = 0; i < 200 && seen === undefined; i++) {
          seen = sample(await agent.metrics().catch(() => ''), 'crs_containerd_tmp_world_writable', { node: nodeName });
          if (seen === undefined) await new Promise((r) => setTimeout(r, 100));
        }
        expect(seen, containerdTmp).toBe(want);
        const warned = (await fs.readFile(agent.logFile, 'utf8')).includes('--containerd-tmp is world-writable');
        expect(warned, containerdTmp).toBe(want === 1);
      }
    } finally {
      for (const a of agents) await a.kill('SIGTERM');
    }
  });
});
