// The wedge rule behind /healthz and the readiness behind /readyz, on a simulated clock.
import { describe, expect, it } from 'vitest';
import type { EngineHealth } from '../../controller/engine/docker-engine.js';
import { createHealth, type ProbedEngine } from '../../controller/health.js';

function setup(wedgedAfterMs = 60_000) {
  let t = 1_000_000;
  let pending = 0;
  let synced = true;
  let pings = 0;
  let pingAnswers = true;
  const engineHealth: EngineHealth = { lastAnswerAt: new Date(t), reachable: true, busy: 0 };
  const engine: ProbedEngine = {
    get health() {
      return engineHealth;
    },
    async ping() {
      pings++;
      if (!pingAnswers) {
        engineHealth.reachable = false;
        throw new Error('no answer');
      }
      engineHealth.reachable = true;
      engineHealth.lastAnswerAt = new Date(t);
    },
  };
  let connected: ProbedEngine | undefined = engine;
  const h = createHealth(
    { engine: () => connected, pendingWork: () => pending, cachesSynced: () => synced },
    { wedgedAfterMs, probeIntervalMs: 10_000, now: () => t },
  );
  return {
    h,
    engineHealth,
    advance: (ms: number) => {
      t += ms;
    },
    now: () => t,
    setPending: (n: number) => {
      pending = n;
    },
    setSynced: (v: boolean) => {
      synced = v;
    },
    disconnect: () => {
      connected = undefined;
    },
    pings: () => pings,
    pingAnswers: (v: boolean) => {
      pingAnswers = v;
    },
  };
}

describe('/healthz: wedged', () => {
  it('is healthy while idle, however long Docker has been silent', () => {
    const s = setup();
    s.advance(3_600_000);
    expect(s.h.health()).toBe(true);
  });

  it('fails once work has been pending for wedgedAfterMs with no Docker answer and no reconcile progress', () => {
    const s = setup();
    s.advance(600_000); // Docker silent long before the work came: the clock starts with the work
    s.setPending(2);
    expect(s.h.health()).toBe(true);
    s.advance(59_000);
    s.h.reconciled('backingOff');
    s.h.reconciled('error');
    expect(s.h.health()).toBe(true);
    s.advance(1_000);
    const verdict = s.h.health();
    expect(verdict).toMatchObject({
      ok: false,
      reason: expect.stringMatching(
        /^wedged: 2 work item\(s\) pending and no progress for 60 s \(Docker last answered 660 s ago; last reconcile that did not back off never\)/,
      ),
    });
  });

  it('counts engine busy (calls outstanding, restores held or queued) as pending work', () => {
    const s = setup();
    s.engineHealth.busy = 3;
    s.h.health();
    s.advance(61_000);
    expect(s.h.health()).toMatchObject({ ok: false });
  });

  it('recovers on a Docker answer or on a reconcile that did not back off', () => {
    const s = setup();
    s.setPending(1);
    s.h.health();
    s.advance(61_000);
    expect(s.h.health()).toMatchObject({ ok: false });
    s.engineHealth.lastAnswerAt = new Date(s.now());
    expect(s.h.health()).toBe(true);
    s.advance(61_000);
    expect(s.h.health()).toMatchObject({ ok: false });
    s.h.reconciled('converged');
    expect(s.h.health()).toBe(true);
  });

  it('pending work that drains resets the clock', () => {
    const s = setup();
    s.setPending(1);
    s.h.health();
    s.advance(50_000);
    s.setPending(0);
    expect(s.h.health()).toBe(true);
    s.setPending(1);
    s.advance(30_000);
    expect(s.h.health()).toBe(true);
  });
});

describe('/readyz', () => {
  it('needs the engine, synced caches and a Docker that answered its latest call', () => {
    const s = setup();
    expect(s.h.ready()).toBe(true);
    s.setSynced(false);
    expect(s.h.ready()).toMatchObject({ ok: false, reason: 'caches not synced' });
    s.setSynced(true);
    s.engineHealth.reachable = false;
    expect(s.h.ready()).toMatchObject({ ok: false, reason: expect.stringMatching(/not answering/) });
    s.disconnect();
    expect(s.h.ready()).toMatchObject({ ok: false, reason: 'Docker engine not reached yet' });
  });
});

describe('engine probe', () => {
  it('pings only when Docker has not answered for the probe interval, and once at a time', async () => {
    const s = setup();
    await s.h.probe();
    expect(s.pings()).toBe(0);
    s.advance(10_000);
    await Promise.all([s.h.probe(), s.h.probe()]);
    expect(s.pings()).toBe(1);
    s.pingAnswers(false);
    s.advance(10_000);
    await s.h.probe();
    expect(s.h.ready()).toMatchObject({ ok: false });
    // Unreachable: probe every time, to notice the recovery at once.
    s.pingAnswers(true);
    await s.h.probe();
    expect(s.pings()).toBe(3);
    expect(s.h.ready()).toBe(true);
  });
});
