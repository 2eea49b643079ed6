// The pure parts of checkpoint bootstrap and its folder store, on a real temporary folder.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BOOTSTRAP_FOLDER,
  BootstrapStore,
  bootstrapBudgetMs,
  bootstrapFailureReason,
  checkpointFolder,
  ownerFolder,
  reclaimableEntries,
} from '../../../controller/engine/bootstrap.js';
import { SOURCE_IMAGE_FILE } from '../../../controller/engine/checkpoint-placement.js';
import { bootstrapEventOf } from '../../../controller/kube/events.js';
import { orphanCheckpointOwners } from '../../../controller/reconcile/orphans.js';
import { bootstrapStatus } from '../../../controller/reconcile/status.js';

const owner = { namespace: 'team-a', name: 'app', uid: '0b7c1f9e-2f7a-4c55-9d55-6d1f3c1d2e3f' };
const IMAGE = `sha256:${'a'.repeat(64)}`;

describe('bootstrap folders', () => {
  it('are <root>/crs-bootstrap/<ns>/<name>/<uid>/<hash>', () => {
    expect(checkpointFolder('/var/lib/docker', owner, 'abc123')).toBe(`/var/lib/docker/${BOOTSTRAP_FOLDER}/team-a/app/${owner.uid}/abc123`);
  });

  it.each([
    [{ ...owner, namespace: '..' }, 'metadata.namespace'],
    [{ ...owner, name: '../x' }, 'metadata.name'],
    [{ ...owner, uid: '../../etc' }, 'metadata.uid'],
    [{ ...owner, namespace: 'a/b' }, 'metadata.namespace'],
  ])('refuse a segment that could walk out of the store (%j)', (bad, field) => {
    expect(() => ownerFolder('/r', bad)).toThrow(field);
  });

  it('refuse a template hash that is not hex', () => {
    expect(() => checkpointFolder('/r', owner, '../x')).toThrow('template hash');
  });
});

describe('bootstrapBudgetMs', () => {
  it('is ready-timeout + warm-up + a restore timeout for the dump', () => {
    expect(bootstrapBudgetMs({ timeoutSeconds: 300, warmupSeconds: 20 }, 120_000)).toBe(440_000);
  });
});

describe('bootstrapFailureReason', () => {
  it.each(['ReadinessTimeout', 'RestoreTimeout', 'CriuFailed', 'Unknown'] as const)('reports the app or CRIU (%s) as BootstrapFailed', (code) => {
    expect(bootstrapFailureReason(code)).toBe('BootstrapFailed');
  });
  it.each(['Aborted', 'EngineUnavailable', 'ImageNotFound', 'QuotaExceeded', 'DiskFull'] as const)('keeps a cause outside the app (%s)', (code) => {
    expect(bootstrapFailureReason(code)).toBe(code);
  });
});

describe('reclaimableEntries', () => {
  it('keeps the current template and its .tmp while it is being made', () => {
    expect(reclaimableEntries(['new', 'new.tmp', 'old', 'old.tmp'], 'new', true)).toEqual(['old', 'old.tmp']);
  });
  it('drops a stale .tmp of the current template when nothing is being made', () => {
    expect(reclaimableEntries(['new', 'new.tmp'], 'new', false)).toEqual(['new.tmp']);
  });
  it('drops everything when nothing is kept (deletion)', () => {
    expect(reclaimableEntries(['a', 'b.tmp'], undefined, true)).toEqual(['a', 'b.tmp']);
  });
});

describe('BootstrapStore', () => {
  let root: string;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'crs-bootstrap-'));
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  /** What Docker would write: a CRIU inventory and a page file. */
  async function dockerWrites(store: BootstrapStore, hash: string, bytes: number): Promise<void> {
    const { parent, id } = await store.prepare(owner, hash);
    await fs.mkdir(path.join(parent, id));
    await fs.writeFile(path.join(parent, id, 'inventory.img'), 'x');
    await fs.writeFile(path.join(parent, id, 'pages-1.img'), Buffer.alloc(bytes));
  }

  it('publishes a checkpoint only once committed, with the image it was taken in', async () => {
    const store = new BootstrapStore(root);
    await dockerWrites(store, 'aa', 1000);
    expect(await store.ready(owner, 'aa')).toBeUndefined();
    const bytes = await store.commit(owner, 'aa', IMAGE);
    expect(bytes).toBeGreaterThanOrEqual(1001);
    const dir = await store.ready(owner, 'aa');
    expect(dir).toBe(checkpointFolder(await fs.realpath(root), owner, 'aa'));
    expect((await fs.readFile(path.join(dir!, SOURCE_IMAGE_FILE), 'utf8')).trim()).toBe(IMAGE);
    await expect(fs.access(`${dir}.tmp`)).rejects.toThrow();
  });

  it('on recovery discards a half-made .tmp and learns finished checkpoints', async () => {
    await dockerWrites(new BootstrapStore(root), 'bb', 10);
    const first = new BootstrapStore(root);
    await dockerWrites(first, 'cc', 10);
    await first.commit(owner, 'cc', IMAGE);
    const restarted = new BootstrapStore(root);
    await restarted.recover();
    await expect(fs.access(`${checkpointFolder(root, owner, 'bb')}.tmp`)).rejects.toThrow();
    expect(restarted.state(owner.uid)).toMatchObject({ phase: 'Ready', templateHash: 'cc' });
  });

  it('refuses a checkpoint folder planted as a symlink', async () => {
    const store = new BootstrapStore(root);
    const elsewhere = path.join(root, 'elsewhere');
    await fs.mkdir(elsewhere);
    await fs.mkdir(ownerFolder(root, owner), { recursive: true });
    await fs.symlink(elsewhere, checkpointFolder(root, owner, 'dd'));
    await expect(store.ready(owner, 'dd')).rejects.toThrow('symlink');
  });

  it('reclaims old templates, then everything with its folders, leaving no bytes', async () => {
    const store = new BootstrapStore(root);
    for (const h of ['e1', 'e2']) {
      await dockerWrites(store, h, 4096);
      await store.commit(owner, h, IMAGE);
    }
    expect(await store.reclaim(owner.uid, 'e2')).toBeGreaterThanOrEqual(4096);
    expect(await fs.readdir(ownerFolder(root, owner))).toEqual(['e2']);
    expect(await store.owners()).toEqual([owner.uid]);
    await store.reclaim(owner.uid);
    expect(await store.owners()).toEqual([]);
    expect(await fs.readdir(path.join(root, BOOTSTRAP_FOLDER))).toEqual([]);
    expect(store.state(owner.uid)).toBeUndefined();
  });
});

describe('status, Events and housekeeping of bootstrap', () => {
  it('status.nodes[].bootstrap carries phase, hash, age and size', () => {
    const created = new Date('2026-01-02T03:04:05.678Z');
    expect(bootstrapStatus({ phase: 'Ready', templateHash: 'h', created, bytes: 42, message: 'm' })).toEqual({
      phase: 'Ready',
      templateHash: 'h',
      checkpointCreated: '2026-01-02T03:04:05Z',
      checkpointSizeBytes: 42,
      message: 'm',
    });
  });

  it('one Event per step, a Warning with the message on failure', () => {
    const at = new Date();
    expect(bootstrapEventOf({ type: 'bootstrap.started', owner, templateHash: 'h', at })?.reason).toBe('BootstrapStarted');
    expect(bootstrapEventOf({ type: 'bootstrap.succeeded', owner, templateHash: 'h', bytes: 2 ** 20, durationSeconds: 3, at })?.message).toContain('1.0 MiB');
    expect(bootstrapEventOf({ type: 'bootstrap.failed', owner, templateHash: 'h', message: 'criu said no', durationSeconds: 1, at })).toMatchObject({
      type: 'Warning',
      reason: 'BootstrapFailed',
      message: expect.stringContaining('criu said no') as unknown,
    });
    expect(bootstrapEventOf({ type: 'checkpoint.sized', owner, bytes: 1, at })).toBeUndefined();
  });

  it('a checkpoint is an orphan only when its resource is gone and holds no container', () => {
    const known = new Set(['live']);
    expect(
      orphanCheckpointOwners(['live', 'gone', 'gone-with-container', 'active'], {
        knownUids: known,
        activeUids: new Set(['active']),
        replicaOwners: new Set(['gone-with-container']),
      }),
    ).toEqual(['gone']);
  });
});
