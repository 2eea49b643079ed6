// Host protection set by the node's operator, against the real engine: the most replica containers
// on the host across all resources (--max-replicas-per-host).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DockerEngine } from '../../../controller/engine/docker-engine.js';
import { testbed } from '../testbed.js';
import { containersOf, docker, makeSource, newEngine, removeOwner, specFor, uid, type Source } from '../engine/helpers.js';

const bed = testbed();
const d = docker(bed);
let source: Source;
let engine: DockerEngine | undefined;
const owners: string[] = [];

beforeAll(async () => {
  source = await makeSource(bed, 'crs-security-quota-src', '*');
});

afterAll(async () => {
  await engine?.close();
  for (const u of owners) await removeOwner(bed, u);
  await d
    .getContainer(source.id)
    .remove({ force: true })
    .catch(() => undefined);
});

describe('--max-replicas-per-host', () => {
  it('concurrent restores of two tenants never pass the cap together; the rest fail with QuotaExceeded, naming no other tenant', async () => {
    const probe = await newEngine(bed, { sweepOnStart: false });
    const held = (await probe.listAllReplicas()).length;
    await probe.close();
    // Room for exactly two more replicas on this host.
    engine = await newEngine(bed, { sweepOnStart: false, maxReplicasPerHost: held + 2 });
    const a = { uid: uid(), namespace: 'tenant-a', name: 'secret-project-a' };
    const b = { uid: uid(), namespace: 'tenant-b', name: 'web' };
    owners.push(a.uid, b.uid);
    const attempts = [a, a, b, b].map((o, i) => engine!.restoreReplica(specFor(source, o, `r${i}`), { timeoutMs: 60_000 }));
    const results = await Promise.allSettled(attempts);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as { code: string; transient: boolean; message: string }] : []));
    expect(ok).toHaveLength(2);
    expect(refused).toHaveLength(2);
    for (const e of refused) {
      expect(e).toMatchObject({ code: 'QuotaExceeded', transient: false });
      expect(e.message).toContain(`--max-replicas-per-host=${held + 2}`);
      expect(e.message).not.toMatch(/tenant-a|secret-project-a|tenant-b/);
    }
    expect((await containersOf(bed, a.uid)).length + (await containersOf(bed, b.uid)).length).toBe(2);
    // What runs is kept; once one goes, there is room again.
    const victim = ok[0] as PromiseFulfilledResult<{ containerId: string; ownerUid: string }>;
    await engine.removeReplica(victim.value.ownerUid, victim.value.containerId);
    const again = await engine.restoreReplica(specFor(source, b, 'r9'), { timeoutMs: 60_000 });
    expect(again.ready).toBe(true);
  });
});
