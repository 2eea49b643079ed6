import { describe, expect, it } from 'vitest';
import { templateHash } from '../../../controller/reconcile/template-hash.js';
import { startSizes, condition, createHarness, resource } from './harness.js';

describe('reconciler: scaling up from zero', () => {
  it('12 replicas: slow start 1, 2, 4 then the rest, never more than 10 in flight, ends Converged with Ready True', async () => {
    const h = createHarness();
    const result = await h.reconcile(resource({ replicas: 12 }));
    expect(result.outcome).toBe('converged');
    expect(startSizes(h).reduce((a, b) => a + b, 0)).toBe(12);
    expect(h.engine.maxInFlight).toBeLessThanOrEqual(10);
    const live = h.engine.ownedBy('uid-web');
    expect(live).toHaveLength(12);
    expect(new Set(live.map((r) => r.replicaId)).size).toBe(12);
    const status = h.lastStatus();
    expect(status).toMatchObject({ node: 'node-a', observedGeneration: 1, replicas: 12, readyReplicas: 12, restoringReplicas: 0, failedReplicas: 0 });
    expect(condition(status, 'Ready')).toMatchObject({ status: 'True', reason: 'AllReplicasReady', observedGeneration: 1 });
    expect(condition(status, 'Progressing')).toMatchObject({ status: 'False', reason: 'Converged' });
    expect(condition(status, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    expect(h.finalizer.ensured).toHaveLength(1);
    expect(h.eventsOf('RestoresStarted')).toHaveLength(1);
    expect(h.metrics.converged).toHaveLength(1);
    expect(h.metrics.reconciled).toEqual(['converged']);
  });

  it('30 replicas: a window that grows 1, 2, 4, 8, then 10 with successes, and the host never sees more than 10 restores at once', async () => {
    const h = createHarness();
    // Restores are held open, so each round shows everything in flight together.
    h.engine.hold = true;
    const pending = h.reconciler.reconcile(resource({ replicas: 30 }), 'default/web');
    const inFlight: number[] = [];
    for (let i = 0; i < 10 && h.engine.ownedBy('uid-web').length < 30; i++) {
      await h.flush();
      inFlight.push(h.engine.heldCount);
      h.engine.release();
    }
    await h.flush();
    const result = await h.until(pending);
    expect(result.outcome).toBe('converged');
    // Each success widens the window by one and frees its own place: 2 new starts per success.
    expect(inFlight.slice(0, 5)).toEqual([1, 2, 4, 8, 10]);
    expect(h.engine.maxInFlight).toBe(10);
    // One window, one pair of Events (aggregated, not one per replica).
    expect(h.eventsOf('RestoresStarted')).toHaveLength(1);
    expect(h.eventsOf('RestoresFinished')).toHaveLength(1);
  });

  it('no barrier: as soon as one restore of a full window finishes, the next starts while the other 9 still run', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 10 }));
    h.engine.hold = true;
    h.engine.maxInFlight = 0;
    const pending = h.reconciler.reconcile(resource({ replicas: 25, generation: 2 }), 'default/web');
    await h.flush();
    expect(h.engine.heldCount).toBe(10);
    const callsBefore = h.engine.restoreCalls.length;
    h.engine.releaseOne();
    await h.flush();
    expect(h.engine.restoreCalls.length).toBe(callsBefore + 1);
    expect(h.engine.heldCount).toBe(10);
    h.engine.releaseOne();
    h.engine.releaseOne();
    await h.flush();
    expect(h.engine.restoreCalls.length).toBe(callsBefore + 3);
    expect(h.engine.heldCount).toBe(10);
    expect(h.engine.maxInFlight).toBe(10);
    // Status follows each replica, not each group of 10.
    expect(h.lastStatus()?.readyReplicas).toBe(13);
    for (let i = 0; i < 20; i++) {
      h.engine.release();
      await h.flush();
    }
    expect((await h.until(pending)).outcome).toBe('converged');
    expect(h.engine.ownedBy('uid-web')).toHaveLength(25);
  });

  it('a failure stops new starts: what runs finishes, nothing new starts until the backoff', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 10 }));
    h.engine.hold = true;
    h.engine.outcome = (spec) => (spec.replicaId === 'a' ? 'RestoreRace' : 'ok');
    const pending = h.reconciler.reconcile(resource({ replicas: 30, generation: 2 }), 'default/web');
    await h.flush();
    expect(h.engine.heldCount).toBe(10);
    const callsBefore = h.engine.restoreCalls.length;
    // Slot a (the first of the window) fails.
    h.engine.releaseOne();
    await h.flush();
    expect(h.engine.restoreCalls.length).toBe(callsBefore);
    expect(h.engine.heldCount).toBe(9);
    h.engine.release();
    expect((await h.until(pending)).outcome).toBe('backingOff');
    expect(h.engine.restoreCalls.length).toBe(callsBefore);
  });

  it('reports the status only when it changes: resyncs of a converged resource write nothing', async () => {
    const h = createHarness();
    const r = resource({ replicas: 2 });
    await h.reconcile(r);
    const writes = h.reports.length;
    for (let i = 0; i < 5; i++) expect((await h.reconcile(r)).outcome).toBe('converged');
    expect(h.reports).toHaveLength(writes);
    expect(h.engine.restoreCalls).toHaveLength(2);
  });
});

describe('reconciler: scaling down and template changes', () => {
  it('scale 12 -> 3 removes the 9 newest and keeps the 3 oldest', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 12 }));
    const byAge = h.engine.ownedBy('uid-web').sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
    const result = await h.reconcile(resource({ replicas: 3, generation: 2 }));
    expect(result.outcome).toBe('converged');
    const left = h.engine
      .ownedBy('uid-web')
      .map((r) => r.containerId)
      .sort();
    expect(left).toEqual(
      byAge
        .slice(0, 3)
        .map((r) => r.containerId)
        .sort(),
    );
    expect(h.engine.removeCalls).toHaveLength(9);
    expect(h.lastStatus()).toMatchObject({ observedGeneration: 2, replicas: 3, readyReplicas: 3 });
  });

  it('a template change replaces every replica under the bound: never more than desired + 10 containers, never more than 10 restores at once', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 12 }));
    h.engine.maxContainers = 0;
    h.engine.maxInFlight = 0;
    const next = resource({ replicas: 12, generation: 2, image: 'crs-sample-app:v2' });
    const result = await h.reconcile(next);
    expect(result.outcome).toBe('converged');
    const live = h.engine.ownedBy('uid-web');
    expect(live).toHaveLength(12);
    expect(new Set(live.map((r) => r.templateHash))).toEqual(new Set([templateHash(next.spec)]));
    expect(h.engine.maxContainers).toBeLessThanOrEqual(22);
    expect(h.engine.maxInFlight).toBeLessThanOrEqual(10);
    expect(condition(h.lastStatus(), 'Ready')).toMatchObject({ status: 'True', observedGeneration: 2 });
    // The new checkpoint starts slow again (it has not proven itself on this node).
    const windows = h.logs.filter((l) => l.msg === 'window opened').map((l) => (l.fields?.['creates'] as unknown[]).length);
    expect(windows[1]).toBe(1);
  });
});

describe('reconciler: failures', () => {
  it('transient failures are retried with growing backoff up to maxAttempts, then the ColdStart fallback runs', async () => {
    const h = createHarness();
    h.engine.outcome = (spec, mode) => (spec.replicaId === '1' && mode === 'restore' ? 'RestoreRace' : 'ok');
    const result = await h.reconcile(resource({ replicas: 3, maxAttempts: 3, fallback: 'ColdStart' }));
    // The call returns at the first resting state; the actor's own timer drives the retries.
    expect(result).toMatchObject({ outcome: 'backingOff', requeueAfterMs: 1000 });
    await h.waitForState('converged');
    const slot1 = h.engine.restoreCalls.filter((c) => c.spec.replicaId === '1');
    expect(slot1.map((c) => [c.mode, c.spec.attempt])).toEqual([
      ['restore', 1],
      ['restore', 2],
      ['restore', 3],
      ['cold', 4],
    ]);
    // Backoff between the failing batches grows: 1 s, then 2 s, then 4 s.
    const gaps = slot1.slice(1).map((c, i) => c.at - slot1[i]!.at);
    expect(gaps).toEqual([1000, 2000, 4000]);
    expect(h.eventsOf('RestoreFailed')).toHaveLength(3);
    expect(h.eventsOf('FallbackUsed')).toHaveLength(1);
    expect(h.eventsOf('FallbackUsed')[0]!.message).toContain('RestoreRace');
    expect(h.lastStatus()).toMatchObject({ readyReplicas: 3, coldStartedReplicas: 1, failedReplicas: 0 });
  });

  it('with fallback None the slot is left failed, reported, and the resource is Degraded RestoreFailed', async () => {
    const h = createHarness();
    h.engine.outcome = (spec) => (spec.replicaId === '0' ? 'RestoreTimeout' : 'ok');
    await h.reconcile(resource({ replicas: 2, maxAttempts: 2, fallback: 'None' }));
    await h.waitForState('degraded');
    const status = h.lastStatus();
    expect(status).toMatchObject({ failedReplicas: 1, readyReplicas: 1 });
    expect(condition(status, 'Degraded')).toMatchObject({ status: 'True', reason: 'RestoreFailed' });
    expect(condition(status, 'Degraded')!.message).toContain('RestoreTimeout');
    // Attempts spent: Stalled (kstatus Failed), and Ready names the cause.
    expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: 'RestoreFailed' });
    expect(condition(status, 'Stalled')).toMatchObject({ status: 'True', reason: 'RestoreFailed' });
    expect(condition(status, 'Reconciling')).toBeUndefined();
    expect(h.engine.restoreCalls.filter((c) => c.spec.replicaId === '0')).toHaveLength(2);
  });

  it('a missing checkpoint: Degraded CheckpointNotFound once, no restore and no hot loop over an hour, recovers on resync once it exists', async () => {
    const h = createHarness();
    h.engine.sourceFailure = 'CheckpointNotFound';
    const r = resource({ replicas: 12 });
    const first = await h.reconcile(r);
    expect(first.outcome).toBe('degraded');
    expect(condition(h.lastStatus(), 'Degraded')).toMatchObject({ status: 'True', reason: 'CheckpointNotFound' });
    // The first status already says Stalled (kstatus: Failed), not "in progress".
    expect(h.reports).toHaveLength(1);
    expect(condition(h.lastStatus(), 'Stalled')).toMatchObject({ status: 'True', reason: 'CheckpointNotFound' });
    expect(condition(h.lastStatus(), 'Ready')).toMatchObject({ status: 'False', reason: 'CheckpointNotFound' });
    // An hour of simulated time with a resync every 10 s (watch echoes, periodic resyncs).
    for (let t = 0; t < 3_600_000; t += 10_000) {
      await h.advance(10_000, 5_000);
      await h.reconcile(r);
    }
    expect(h.engine.restoreCalls).toHaveLength(0);
    // A source probe is one inspect of the source container, at most one per 30 s however often
    // resyncs come (here every 10 s): at most 120 in the hour, plus the first check.
    expect(h.engine.checkSourceCalls.length).toBeGreaterThan(1);
    expect(h.engine.checkSourceCalls.length).toBeLessThanOrEqual(121);
    expect(h.eventsOf('Degraded')).toHaveLength(1);
    // The checkpoint appears: the next resync (30 s after the last probe at the latest) converges.
    h.engine.sourceFailure = undefined;
    await h.advance(30_000, 10_000);
    const healed = await h.reconcile(r);
    expect(healed.outcome).toBe('converged');
    expect(h.engine.ownedBy('uid-web')).toHaveLength(12);
    expect(h.eventsOf('Recovered')).toHaveLength(1);
    expect(condition(h.lastStatus(), 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    expect(condition(h.lastStatus(), 'Stalled')).toBeUndefined();
  });

  it('a missing checkpoint without any resync: the probe timer backs off to 10 min, a dozen checks in an hour', async () => {
    const h = createHarness();
    h.engine.sourceFailure = 'CheckpointNotFound';
    expect((await h.reconcile(resource({ replicas: 12 }))).outcome).toBe('degraded');
    await h.advance(3_600_000, 10_000);
    // Probes at 30 s, 1.5, 3.5, 7.5, 15.5, 25.5, 35.5, 45.5, 55.5 min: 9 plus the first check.
    expect(h.engine.checkSourceCalls).toHaveLength(10);
    expect(h.engine.restoreCalls).toHaveLength(0);
    expect(h.eventsOf('Degraded')).toHaveLength(1);
  });

  it('a missing image costs ONE failed restore (slow start), then Degraded ImageNotFound; probes stay rare', async () => {
    const h = createHarness();
    h.engine.outcome = () => 'ImageNotFound';
    const r = resource({ replicas: 45 });
    expect((await h.reconcile(r)).outcome).toBe('degraded');
    expect(h.engine.restoreCalls).toHaveLength(1);
    expect(condition(h.lastStatus(), 'Degraded')).toMatchObject({ reason: 'ImageNotFound' });
    await h.advance(3_600_000, 10_000);
    // One restore per probe; probes back off to 10 min: at most a dozen in an hour.
    expect(h.engine.restoreCalls.length).toBeLessThanOrEqual(12);
    expect(h.eventsOf('Degraded')).toHaveLength(1);
    // A spec change gets a fresh look at once.
    h.engine.outcome = () => 'ok';
    const fixed = await h.reconcile(resource({ replicas: 45, generation: 2, image: 'crs-sample-app:fixed' }));
    expect(fixed.outcome).toBe('converged');
    expect(h.engine.ownedBy('uid-web')).toHaveLength(45);
  });

  it('a host cap (QuotaExceeded) is Degraded at once, keeps what runs, and converges once the operator makes room', async () => {
    const h = createHarness();
    expect((await h.reconcile(resource({ replicas: 3 }))).outcome).toBe('converged');
    h.engine.outcome = () => 'QuotaExceeded';
    expect((await h.reconcile(resource({ replicas: 10, generation: 2 }))).outcome).toBe('degraded');
    expect(condition(h.lastStatus(), 'Degraded')).toMatchObject({ status: 'True', reason: 'QuotaExceeded' });
    expect(h.engine.ownedBy('uid-web')).toHaveLength(3);
    expect(h.engine.removeCalls).toHaveLength(0);
    h.engine.outcome = () => 'ok';
    await h.advance(3_600_000, 10_000);
    expect(h.engine.ownedBy('uid-web')).toHaveLength(10);
  });

  it('an invalid spec is Degraded InvalidSpec naming the field; nothing is touched', async () => {
    const h = createHarness();
    h.engine.seed({ ownerUid: 'uid-web', replicaId: '0', attempt: 1, templateHash: 'x', startMode: 'restore', state: 'running', ready: true });
    const result = await h.reconcile(resource({ replicas: 3, maxConcurrent: 50 }));
    expect(result.outcome).toBe('degraded');
    const degraded = condition(h.lastStatus(), 'Degraded');
    expect(degraded).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(degraded!.message).toContain('spec.restore.maxConcurrent');
    expect(h.engine.restoreCalls).toHaveLength(0);
    expect(h.engine.removeCalls).toHaveLength(0);
    // No probe for a spec error: only a spec change helps.
    await h.advance(3_600_000, 60_000);
    expect(h.engine.listCalls).toBe(1);
  });

  it('Docker down: backs off (1 s, 2 s, 4 s, ...), then converges when it is back', async () => {
    const h = createHarness();
    h.engine.down = true;
    const r = resource({ replicas: 2 });
    const result = await h.reconcile(r);
    expect(result).toMatchObject({ outcome: 'backingOff', requeueAfterMs: 1000 });
    await h.advance(7_000, 500);
    expect(h.engine.listCalls).toBe(4); // t = 0, 1, 3, 7 s
    h.engine.down = false;
    await h.advance(8_000, 500);
    expect(h.reconciler.snapshot('default/web')!.value).toBe('converged');
    expect(h.engine.ownedBy('uid-web')).toHaveLength(2);
  });
});

describe('reconciler: stale cache, pause, deletion', () => {
  it('a stale list never makes it create more than desired (expectations)', async () => {
    const h = createHarness();
    h.engine.frozenList = [];
    const r = resource({ replicas: 3 });
    const result = await h.reconcile(r);
    expect(result.outcome).toBe('waiting');
    expect(h.engine.ownedBy('uid-web')).toHaveLength(3);
    await h.advance(60_000);
    expect(h.engine.ownedBy('uid-web')).toHaveLength(3);
    expect(h.engine.restoreCalls).toHaveLength(3);
    h.engine.frozenList = undefined;
    await h.advance(10_000);
    expect(h.reconciler.snapshot('default/web')!.value).toBe('converged');
    expect(h.engine.restoreCalls).toHaveLength(3);
  });

  it('paused does nothing: no restore, no removal, Ready False Paused', async () => {
    const h = createHarness();
    for (const id of ['0', '1', '2', '3']) {
      h.engine.seed({ ownerUid: 'uid-web', replicaId: id, attempt: 1, templateHash: 'old', startMode: 'restore', state: 'running', ready: true });
    }
    const result = await h.reconcile(resource({ replicas: 12, paused: true }));
    expect(result.outcome).toBe('paused');
    await h.advance(600_000, 60_000);
    expect(h.engine.restoreCalls).toHaveLength(0);
    expect(h.engine.removeCalls).toHaveLength(0);
    expect(condition(h.lastStatus(), 'Ready')).toMatchObject({ status: 'False', reason: 'Paused' });
    expect(condition(h.lastStatus(), 'Progressing')).toMatchObject({ status: 'False', reason: 'Paused' });
  });

  it('deletion removes every container of the resource, then releases the finalizer; a foreign container is untouched', async () => {
    const h = createHarness();
    const foreign = h.engine.seed({
      ownerUid: 'uid-other',
      replicaId: '0',
      attempt: 1,
      templateHash: 'x',
      startMode: 'restore',
      state: 'running',
      ready: true,
    });
    await h.reconcile(resource({ replicas: 5 }));
    h.engine.seed({ ownerUid: 'uid-web', replicaId: 'z', attempt: 1, templateHash: 'x', startMode: 'restore', state: 'created', ready: false });
    const result = await h.reconcile(resource({ replicas: 5, generation: 1, deleting: true }));
    expect(result.outcome).toBe('deleted');
    expect(h.engine.ownedBy('uid-web')).toHaveLength(0);
    expect(h.finalizer.released).toEqual([{ ref: expect.objectContaining({ uid: 'uid-web' }), containersLeft: 0 }]);
    expect(h.engine.containers.get(foreign.containerId)).toBeDefined();
    expect(h.engine.removeCalls).not.toContain(foreign.containerId);
    expect(h.reconciler.keys()).toEqual([]);
  });

  it('deletion mid-batch aborts the restores in flight and still removes everything', async () => {
    const h = createHarness();
    h.engine.hold = true;
    const first = h.reconciler.reconcile(resource({ replicas: 12 }), 'default/web');
    await h.flush();
    expect(h.engine.heldCount).toBe(1);
    const deletion = await h.reconcile(resource({ replicas: 12, deleting: true }));
    expect(deletion.outcome).toBe('deleted');
    expect(h.engine.restoreCalls[0]!.aborted).toBe(true);
    expect(h.engine.ownedBy('uid-web')).toHaveLength(0);
    expect(h.finalizer.released).toHaveLength(1);
    expect((await first).outcome).toBe('deleted');
  });

  it('an object gone from the API (no finalizer left) has its containers removed without a release', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 2 }));
    const result = await h.until(h.reconciler.reconcile(undefined, 'default/web'));
    expect(result.outcome).toBe('deleted');
    expect(h.engine.ownedBy('uid-web')).toHaveLength(0);
    expect(h.finalizer.released).toHaveLength(0);
  });
});

describe('reconciler: changes mid-batch, restart, shutdown, orphans', () => {
  it('a scale-down mid-batch cancels only the restores it no longer wants; the others finish', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 1 }));
    h.engine.hold = true;
    const growing = h.reconciler.reconcile(resource({ replicas: 12, generation: 2 }), 'default/web');
    await h.flush();
    // Slot 0 runs; slots 1 and 2 are being restored (slow start: 2).
    expect(h.engine.heldCount).toBe(2);
    // 12 -> 3 still wants both.
    const still = h.reconciler.reconcile(resource({ replicas: 3, generation: 3 }), 'default/web');
    await h.flush();
    expect(h.engine.restoreCalls.some((c) => c.aborted)).toBe(false);
    // 3 -> 2 no longer wants slot 2: it is cancelled at once, slot 1 goes on.
    const shrinking = h.reconciler.reconcile(resource({ replicas: 2, generation: 4 }), 'default/web');
    await h.flush();
    expect(h.engine.restoreCalls.filter((c) => c.aborted).map((c) => c.spec.replicaId)).toEqual(['2']);
    h.engine.release();
    const results = await h.until(Promise.all([growing, still, shrinking]));
    expect(results.map((r) => r.outcome)).toEqual(['converged', 'converged', 'converged']);
    expect(h.engine.restoreCalls).toHaveLength(3);
    expect(
      h.engine
        .ownedBy('uid-web')
        .map((r) => r.replicaId)
        .sort(),
    ).toEqual(['0', '1']);
    expect(h.lastStatus()).toMatchObject({ observedGeneration: 4, readyReplicas: 2 });
    // A cancelled restore is not a failure of the slot.
    expect(h.eventsOf('RestoreFailed')).toHaveLength(0);
  });

  it('offer(): a change reaches a busy actor at once (the queue holds its key); an actor at rest is left to the queue', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 1 }));
    const listsAtRest = h.engine.listCalls;
    h.reconciler.offer(resource({ replicas: 5, generation: 2 }), 'default/web');
    await h.flush();
    expect(h.engine.listCalls).toBe(listsAtRest);
    expect(h.reconciler.snapshot('default/web')!.value).toBe('converged');
    h.engine.hold = true;
    void h.reconciler.reconcile(resource({ replicas: 12, generation: 3 }), 'default/web');
    await h.flush();
    expect(h.reconciler.snapshot('default/web')!.value).toBe('restoring');
    h.reconciler.offer(resource({ replicas: 12, generation: 3, deleting: true }), 'default/web');
    await h.flush();
    expect(h.engine.restoreCalls.filter((c) => c.aborted).length).toBeGreaterThan(0);
    await h.advance(10_000);
    expect(h.engine.ownedBy('uid-web')).toHaveLength(0);
    expect(h.finalizer.released).toHaveLength(1);
  });

  it("restart: adopts what exists without duplicates and replaces a container left in 'created'", async () => {
    const h = createHarness();
    const r = resource({ replicas: 8 });
    const hash = templateHash(r.spec);
    for (let i = 0; i < 5; i++) {
      h.engine.seed({ ownerUid: 'uid-web', replicaId: String(i), attempt: 1, templateHash: hash, startMode: 'restore', state: 'running', ready: true });
    }
    const leftover = h.engine.seed({
      ownerUid: 'uid-web',
      replicaId: '5',
      attempt: 1,
      templateHash: hash,
      startMode: 'restore',
      state: 'created',
      ready: false,
    });
    const result = await h.reconcile(r);
    expect(result.outcome).toBe('converged');
    const live = h.engine.ownedBy('uid-web');
    expect(live).toHaveLength(8);
    expect(new Set(live.map((x) => x.replicaId)).size).toBe(8);
    expect(h.engine.containers.has(leftover.containerId)).toBe(false);
    expect(live.find((x) => x.replicaId === '5')).toMatchObject({ attempt: 2, state: 'running' });
    // Five ready restored replicas prove the checkpoint: no slow start from 1.
    expect(startSizes(h)).toEqual([3]);
  });

  it('stop(): a batch that finishes within the grace period is not aborted', async () => {
    const h = createHarness({ stopGraceMs: 30_000 });
    h.engine.hold = true;
    void h.reconciler.reconcile(resource({ replicas: 12 }), 'default/web');
    await h.flush();
    const stopped = h.reconciler.stop();
    await h.advance(5_000);
    h.engine.release();
    await h.until(stopped);
    expect(h.engine.restoreCalls).toHaveLength(1);
    expect(h.engine.restoreCalls[0]!.aborted).toBe(false);
    expect(h.engine.ownedBy('uid-web')).toHaveLength(1);
    expect((await h.reconciler.reconcile(resource({ replicas: 12 }), 'default/web')).outcome).toBe('stopped');
  });

  it('stop(): a batch still running after the grace period is aborted', async () => {
    const h = createHarness({ stopGraceMs: 30_000 });
    h.engine.hold = true;
    void h.reconciler.reconcile(resource({ replicas: 12 }), 'default/web');
    await h.flush();
    await h.until(h.reconciler.stop());
    expect(h.engine.restoreCalls[0]!.aborted).toBe(true);
    expect(h.engine.ownedBy('uid-web')).toHaveLength(0);
  });

  it('collectOrphans removes containers of unknown owners only, and only once they are old enough', async () => {
    const h = createHarness({ orphanMinAgeMs: 120_000 });
    await h.reconcile(resource({ replicas: 2 }));
    const old = h.engine.seed({ ownerUid: 'uid-deleted', replicaId: '0', attempt: 1, templateHash: 'x', startMode: 'restore', state: 'running', ready: true });
    const young = h.engine.seed({
      ownerUid: 'uid-new',
      replicaId: '0',
      attempt: 1,
      templateHash: 'x',
      startMode: 'restore',
      state: 'running',
      ready: true,
      createdAt: new Date(h.clock.now()),
    });
    const known = h.engine.seed({ ownerUid: 'uid-known', replicaId: '0', attempt: 1, templateHash: 'x', startMode: 'restore', state: 'running', ready: true });
    // uid-web is not in the known set (a lagging cache) but has an actor: it is kept.
    const result = await h.until(h.reconciler.collectOrphans(new Set(['uid-known'])));
    expect(result).toEqual({ removed: 1, failed: 0 });
    expect(h.engine.containers.has(old.containerId)).toBe(false);
    expect(h.engine.containers.has(young.containerId)).toBe(true);
    expect(h.engine.containers.has(known.containerId)).toBe(true);
    expect(h.engine.ownedBy('uid-web')).toHaveLength(2);
  });
});

describe('reconciler: more restart and engine cases', () => {
  it('a replica that dies right after its restore is replaced, bounded by maxAttempts', async () => {
    const h = createHarness();
    // Slot 0's process always exits right after the restore.
    h.engine.outcome = (spec) => (spec.replicaId === '0' ? { leave: 'exited' } : 'ok');
    await h.reconcile(resource({ replicas: 2, maxAttempts: 3 }));
    await h.waitForState('degraded');
    const slot0 = h.engine.restoreCalls.filter((c) => c.spec.replicaId === '0');
    expect(slot0.map((c) => c.spec.attempt)).toEqual([1, 2, 3]);
    await h.advance(3_600_000, 10_000);
    // One restore per probe, probes backing off to one per 10 min: no loop, no flapping.
    expect(h.engine.restoreCalls.filter((c) => c.spec.replicaId === '0').length).toBeLessThanOrEqual(3 + 10);
    expect(h.eventsOf('Degraded')).toHaveLength(1);
    expect(h.eventsOf('Recovered')).toHaveLength(0);
    expect(condition(h.lastStatus(), 'Degraded')).toMatchObject({ status: 'True', reason: 'RestoreFailed' });
  });

  it('the Docker engine going away mid-rollout: failed restores back off and the rollout converges once it is back', async () => {
    const h = createHarness();
    let calls = 0;
    h.engine.outcome = () => {
      calls++;
      if (calls === 4) h.engine.down = true;
      return calls >= 4 && calls <= 7 ? 'EngineUnavailable' : 'ok';
    };
    const first = await h.reconcile(resource({ replicas: 12 }));
    expect(first.outcome).toBe('backingOff');
    await h.advance(3_000);
    h.engine.down = false;
    await h.waitForState('converged');
    const live = h.engine.ownedBy('uid-web');
    expect(live).toHaveLength(12);
    expect(new Set(live.map((r) => r.replicaId)).size).toBe(12);
  });

  it('a resource re-created under the same name: the old one is cleaned up first, the new one starts fresh', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 2, uid: 'uid-old' }));
    const result = await h.reconcile(resource({ replicas: 1, uid: 'uid-new' }));
    expect(result.outcome).toBe('converged');
    expect(h.engine.ownedBy('uid-old')).toHaveLength(0);
    expect(h.engine.ownedBy('uid-new')).toHaveLength(1);
  });

  it('every resource runs the one machine definition (per-resource state is in each actor, not in a machine of its own)', async () => {
    const h = createHarness();
    await h.reconcile(resource({ name: 'a', uid: 'uid-a', replicas: 1 }));
    await h.reconcile(resource({ name: 'b', uid: 'uid-b', replicas: 2 }));
    const a = h.reconciler.snapshot('default/a');
    const b = h.reconciler.snapshot('default/b');
    expect(a?.machine).toBeDefined();
    expect(a?.machine).toBe(b?.machine);
    expect([a?.context.plan?.summary.ready, b?.context.plan?.summary.ready]).toEqual([1, 2]);
  });

  it('logs every transition with structured fields and exposes the snapshot', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 1 }));
    const transitions = h.logs.filter((l) => l.msg === 'reconcile state').map((l) => `${String(l.fields?.['from'])}->${String(l.fields?.['to'])}`);
    expect(transitions).toEqual(['idle->observing', 'observing->preparing', 'preparing->restoring', 'restoring->verifying', 'verifying->converged']);
    const snapshot = h.reconciler.snapshot('default/web')!;
    expect(snapshot.value).toBe('converged');
    expect(snapshot.context.plan?.summary).toMatchObject({ desired: 1, ready: 1 });
    expect(snapshot.context.decision).toEqual({ kind: 'converged' });
  });
});

describe('reconciler: node selection and agent-side validation', () => {
  it('a resource that does not select this node wants none here: its containers go, and no status entry is written', async () => {
    let selected = true;
    const h = createHarness({ selectsNode: () => selected });
    await h.reconcile(resource({ replicas: 3 }));
    expect(h.engine.ownedBy('uid-web')).toHaveLength(3);
    selected = false;
    const writes = h.reports.length;
    // The node's labels changed: the kube layer re-queues the resource (same generation).
    const result = await h.reconcile(resource({ replicas: 3 }));
    expect(result.outcome).toBe('converged');
    expect(h.engine.ownedBy('uid-web')).toHaveLength(0);
    // The entry this node already wrote is kept truthful: it ends at 0 replicas.
    expect(h.reports.length).toBeGreaterThan(writes);
    expect(h.lastStatus()).toMatchObject({ replicas: 0, readyReplicas: 0 });
  });

  it('a node the resource never selected writes no status entry at all', async () => {
    const h = createHarness({ selectsNode: () => false });
    expect((await h.reconcile(resource({ replicas: 3 }))).outcome).toBe('converged');
    expect(h.reports).toHaveLength(0);
    expect(h.engine.restoreCalls).toHaveLength(0);
  });

  it("uses the API's agent-side validation: a path source without a checkpoint root is Degraded InvalidSpec", async () => {
    const h = createHarness();
    const r = resource({ replicas: 1 });
    r.spec.checkpoint = { path: '/var/lib/elsewhere/ckpt' };
    expect((await h.reconcile(r)).outcome).toBe('degraded');
    const degraded = condition(h.lastStatus(), 'Degraded');
    expect(degraded).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(degraded!.message).toContain('spec.checkpoint.path');
    expect(h.engine.restoreCalls).toHaveLength(0);
  });
});
