// Issue 10 in the simulated-clock harness: deaths seen through the engine's event stream, failures
// forgiven after a proven run or an engine outage, maxAttempts still bounding a broken checkpoint.
import { describe, expect, it } from 'vitest';
import { condition, createHarness, resource } from './harness.js';

const KEY = 'default/web';

describe('liveness: a replica that dies is noticed through the engine event stream', () => {
  it('a replica killed in steady state: status drops at once and the slot is restored, with no timer or resync', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 4 }));
    const victim = h.engine.ownedBy('uid-web').find((r) => r.replicaId === '2')!;
    const reportsBefore = h.reports.length;
    const at = h.clock.now();
    h.die([victim.containerId]);
    await h.flush();
    // No simulated time passed: only the event made the actor look again.
    expect(h.clock.now()).toBe(at);
    const after = h.reports.slice(reportsBefore);
    expect(after.some((r) => r.status.readyReplicas === 3)).toBe(true);
    expect(h.reconciler.snapshot(KEY)!.value).toBe('converged');
    const slot2 = h.engine.ownedBy('uid-web').filter((r) => r.replicaId === '2');
    expect(slot2).toHaveLength(1);
    expect(slot2[0]).toMatchObject({ attempt: 2, state: 'running', startMode: 'restore' });
    expect(h.lastStatus()).toMatchObject({ readyReplicas: 4 });
  });

  it('an event that arrives while an observation is under way is not lost: the actor looks again before resting', async () => {
    const h = createHarness();
    const r = resource({ replicas: 3 });
    await h.reconcile(r);
    // A resync starts an observation; the replica dies after Docker answered the list.
    const pending = h.reconciler.reconcile(r, KEY);
    expect(h.reconciler.snapshot(KEY)!.value).toBe('observing');
    h.die([h.engine.ownedBy('uid-web')[0]!.containerId]);
    expect((await h.until(pending)).outcome).toBe('converged');
    await h.flush();
    expect(h.engine.ownedBy('uid-web').filter((x) => x.state === 'running')).toHaveLength(3);
    expect(h.engine.restoreCalls).toHaveLength(4);
  });

  it('an event for a resource that is resting in backoff does not cut the backoff short; the engine coming back does', async () => {
    const h = createHarness();
    h.engine.down = true;
    await h.reconcile(resource({ replicas: 2 }));
    // Backoff after EngineUnavailable: 1, 2, 4, 8, 16 s -> the next wait is 32 s.
    await h.advance(31_000, 500);
    expect(h.reconciler.snapshot(KEY)!.value).toBe('backingOff');
    const lists = h.engine.listCalls;
    h.engine.down = false;
    h.reconciler.engineChanged({ type: 'replica', change: { action: 'die', containerId: 'x', ownerUid: 'uid-web', at: new Date(h.clock.now()) } });
    await h.flush();
    expect(h.engine.listCalls).toBe(lists);
    h.stream('resumed');
    await h.flush();
    expect(h.reconciler.snapshot(KEY)!.value).toBe('converged');
    expect(h.engine.ownedBy('uid-web')).toHaveLength(2);
  });

  it('an engine shutting down refuses the list but its stream reports the deaths: status stops claiming them at once', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 4 }));
    expect(condition(h.lastStatus(), 'Ready')).toMatchObject({ status: 'True' });
    h.engine.down = true;
    h.die(h.engine.ownedBy('uid-web').map((r) => r.containerId));
    await h.flush();
    expect(h.reconciler.snapshot(KEY)!.value).toBe('backingOff');
    expect(h.lastStatus()).toMatchObject({ readyReplicas: 0 });
    expect(condition(h.lastStatus(), 'Ready')).toMatchObject({ status: 'False' });
    h.engine.down = false;
    h.stream('resumed');
    await h.flush();
    expect(h.reconciler.snapshot(KEY)!.value).toBe('converged');
    expect(h.lastStatus()).toMatchObject({ readyReplicas: 4 });
  });

  it('engineChanged tells only the owner of a replica, and every actor of a stream break', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 1 }));
    await h.reconcile(resource({ replicas: 1, name: 'other', uid: 'uid-other' }));
    const change = { action: 'start' as const, containerId: 'c', ownerUid: 'uid-other', at: new Date(h.clock.now()) };
    expect(h.reconciler.engineChanged({ type: 'replica', change })).toEqual(['default/other']);
    expect(h.reconciler.engineChanged({ type: 'replica', change: { ...change, ownerUid: 'uid-unknown' } })).toEqual([]);
    expect(h.reconciler.engineChanged({ type: 'lost', at: new Date(h.clock.now()), reason: 'x' }).sort()).toEqual(['default/other', KEY]);
  });
});

describe('liveness: failures are forgiven once a replica has proven itself', () => {
  /**
   * An engine restart as measured on Docker 26.1: dockerd stops accepting connections at once, stops
   * every container (the open event stream still delivers their deaths), and closes the stream only
   * once they are all down (6 s later on the test bed).
   */
  async function engineRestart(h: ReturnType<typeof createHarness>, downMs: number): Promise<void> {
    const live = h.engine.ownedBy('uid-web').filter((r) => r.state === 'running');
    h.engine.down = true;
    h.die(live.map((r) => r.containerId));
    await h.advance(6_000, 500);
    h.stream('lost');
    await h.advance(downMs, 500);
    h.engine.down = false;
    h.stream('resumed');
  }

  it('issue scenario: 20 replicas, maxAttempts 3, six engine restarts in a row: each time all 20 run again promptly, never Degraded', async () => {
    const h = createHarness();
    const r = resource({ replicas: 20, maxAttempts: 3 });
    expect((await h.reconcile(r)).outcome).toBe('converged');
    for (let round = 1; round <= 6; round++) {
      // Restarts 20 s apart: the replicas never get to prove themselves by age.
      await h.advance(20_000, 1_000);
      await engineRestart(h, 3_000);
      const restartedAt = h.clock.now();
      await h.reconcile(r); // the agent re-lists every resource once the stream stands again
      await h.waitForState('converged', KEY, 120_000);
      const running = h.engine.ownedBy('uid-web').filter((x) => x.state === 'running');
      expect(running, `round ${round}`).toHaveLength(20);
      expect(h.clock.now() - restartedAt, `round ${round}: recovery time`).toBeLessThanOrEqual(60_000);
    }
    expect(h.eventsOf('Degraded')).toHaveLength(0);
    expect(condition(h.lastStatus(), 'Degraded')).toMatchObject({ status: 'False' });
  });

  it('every replica killed five times, 90 s apart (each ran longer than provenAfterMs): each time all run again, never Degraded', async () => {
    const h = createHarness();
    const r = resource({ replicas: 20, maxAttempts: 3 });
    await h.reconcile(r);
    for (let round = 1; round <= 5; round++) {
      await h.advance(90_000, 5_000);
      h.die(
        h.engine
          .ownedBy('uid-web')
          .filter((x) => x.state === 'running')
          .map((x) => x.containerId),
      );
      await h.waitForState('converged', KEY, 60_000);
      expect(
        h.engine.ownedBy('uid-web').filter((x) => x.state === 'running'),
        `round ${round}`,
      ).toHaveLength(20);
    }
    expect(h.eventsOf('Degraded')).toHaveLength(0);
  });

  it('provenAfterMs is a machine option: kills 15 s apart are forgiven with 10 s, and use up maxAttempts with the default 60 s', async () => {
    const killFourTimes = async (h: ReturnType<typeof createHarness>): Promise<number[]> => {
      await h.reconcile(resource({ replicas: 3, maxAttempts: 2 }));
      const running: number[] = [];
      for (let round = 1; round <= 4; round++) {
        await h.advance(15_000, 1_000);
        h.die(
          h.engine
            .ownedBy('uid-web')
            .filter((x) => x.state === 'running')
            .map((x) => x.containerId),
        );
        await h.advance(10_000, 1_000);
        running.push(h.engine.ownedBy('uid-web').filter((x) => x.state === 'running').length);
      }
      return running;
    };
    const short = createHarness({ machine: { provenAfterMs: 10_000 } });
    expect(await killFourTimes(short)).toEqual([3, 3, 3, 3]);
    expect(short.eventsOf('Degraded')).toHaveLength(0);
    const standard = createHarness();
    const running = await killFourTimes(standard);
    expect(running.at(-1)).toBe(0);
    expect(standard.eventsOf('Degraded')).toHaveLength(1);
  });

  it('deaths of young replicas with the engine up still count: maxAttempts bounds them and the resource goes Degraded', async () => {
    const h = createHarness();
    await h.reconcile(resource({ replicas: 2, maxAttempts: 3 }));
    for (let round = 0; round < 3; round++) {
      await h.advance(5_000, 1_000);
      const slot0 = h.engine.ownedBy('uid-web').find((x) => x.replicaId === '0' && x.state === 'running');
      if (slot0) h.die([slot0.containerId]);
      await h.flush();
    }
    await h.waitForState('degraded', KEY, 60_000);
    expect(condition(h.lastStatus(), 'Degraded')).toMatchObject({ status: 'True', reason: 'RestoreFailed' });
    expect(h.lastStatus()).toMatchObject({ failedReplicas: 1, readyReplicas: 1 });
  });

  it('EngineUnavailable restore failures do not use up attempts', async () => {
    const h = createHarness();
    let calls = 0;
    h.engine.outcome = () => (++calls <= 6 ? 'EngineUnavailable' : 'ok');
    await h.reconcile(resource({ replicas: 1, maxAttempts: 2 }));
    await h.waitForState('converged', KEY, 600_000);
    expect(h.engine.restoreCalls.length).toBe(7);
    expect(h.eventsOf('Degraded')).toHaveLength(0);
  });
});

describe('a missing Node object is unknown, not "labels do not match"', () => {
  it('keeps what runs and creates nothing while the Node is missing, reports NodeUnknown, acts again once it is back', async () => {
    let selection: boolean | 'unknown' = true;
    const h = createHarness({ selectsNode: () => selection });
    const r = resource({ replicas: 3 });
    await h.reconcile(r);
    const before = h.engine
      .ownedBy('uid-web')
      .map((x) => x.containerId)
      .sort();
    selection = 'unknown';
    // The kube layer re-queues every resource when the Node goes away.
    expect((await h.reconcile(r)).state).toBe('nodeUnknown');
    expect(
      h.engine
        .ownedBy('uid-web')
        .map((x) => x.containerId)
        .sort(),
    ).toEqual(before);
    expect(condition(h.lastStatus(), 'Progressing')).toMatchObject({ status: 'False', reason: 'NodeUnknown' });
    expect(h.lastStatus()).toMatchObject({ replicas: 3, readyReplicas: 3 });
    expect(h.logs.filter((l) => l.msg.startsWith('Node object missing'))).toHaveLength(1);
    // A scale-up and a death while it is missing change nothing on the engine.
    await h.reconcile(resource({ replicas: 5, generation: 2 }));
    h.die([before[0]!]);
    await h.advance(600_000, 10_000);
    expect(h.engine.restoreCalls).toHaveLength(3);
    expect(h.engine.removeCalls).toHaveLength(0);
    expect(h.logs.filter((l) => l.msg.startsWith('Node object missing'))).toHaveLength(1);
    // The Node is back: the resource converges on its spec again.
    selection = true;
    expect((await h.reconcile(resource({ replicas: 5, generation: 2 }))).outcome).toBe('converged');
    expect(h.engine.ownedBy('uid-web').filter((x) => x.state === 'running')).toHaveLength(5);
    expect(condition(h.lastStatus(), 'Progressing')).toMatchObject({ reason: 'Converged' });
  });

  it('a deletion still completes while the Node is missing', async () => {
    let selection: boolean | 'unknown' = true;
    const h = createHarness({ selectsNode: () => selection });
    await h.reconcile(resource({ replicas: 2 }));
    selection = 'unknown';
    expect((await h.reconcile(resource({ replicas: 2, deleting: true }))).outcome).toBe('deleted');
    expect(h.engine.ownedBy('uid-web')).toHaveLength(0);
    expect(h.finalizer.released).toHaveLength(1);
  });
});
