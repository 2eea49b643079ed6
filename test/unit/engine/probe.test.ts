// The readiness loop (Kubernetes' probe shape) with a simulated clock, and ports in create options.
import { describe, expect, it } from 'vitest';
import type { ReadinessProbe } from '../../../controller/api/types.js';
import type { Clock } from '../../../controller/engine/clock.js';
import { buildCreateOptions } from '../../../controller/engine/container-spec.js';
import { EngineError } from '../../../controller/engine/errors.js';
import { publishedPorts } from '../../../controller/engine/inventory.js';
import { awaitReadiness, readinessBoundMs, type ProbeResult } from '../../../controller/engine/probe.js';
import type { ReplicaSpec } from '../../../controller/engine/types.js';

/** Time moves only by the loop's own sleeps; every sleep is recorded. */
function simulatedClock(): Clock & { elapsed: number; sleeps: number[] } {
  const clock = {
    elapsed: 0,
    sleeps: [] as number[],
    now: () => new Date(clock.elapsed),
    sleep: async (ms: number, signal?: AbortSignal) => {
      if (signal?.aborted) throw signal.reason;
      clock.sleeps.push(ms);
      clock.elapsed += ms;
    },
  };
  return clock;
}

const probe = (over: Partial<ReadinessProbe> = {}): ReadinessProbe => ({
  httpGet: { port: 8080, path: '/' },
  initialDelaySeconds: 2,
  periodSeconds: 5,
  timeoutSeconds: 1,
  successThreshold: 2,
  failureThreshold: 3,
  ...over,
});

/** A probe answering from a script of results; records when (simulated ms) each ran. */
function scripted(clock: { elapsed: number }, results: boolean[]) {
  const at: number[] = [];
  const once = async (): Promise<ProbeResult> => {
    at.push(clock.elapsed);
    const ok = results.shift() ?? false;
    return { ok, detail: ok ? 'answered 200' : 'connection refused' };
  };
  return { once, at };
}

describe('awaitReadiness', () => {
  it('is ready after successThreshold passes in a row, probing every periodSeconds after initialDelaySeconds', async () => {
    const clock = simulatedClock();
    const s = scripted(clock, [false, true, false, true, true]);
    await awaitReadiness(probe(), s.once, clock, new AbortController().signal, 'restore of t/web replica r1');
    expect(s.at).toEqual([2000, 7000, 12000, 17000, 22000]);
  });

  it('fails with ReadinessTimeout after failureThreshold failures in a row, within its bound', async () => {
    const clock = simulatedClock();
    const s = scripted(clock, [true, false, false, false, true]);
    const err = await awaitReadiness(probe(), s.once, clock, new AbortController().signal, 'restore of t/web replica r1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('ReadinessTimeout');
    expect((err as EngineError).transient).toBe(false);
    expect((err as EngineError).message).toMatch(/failed 3 time\(s\) in a row.*last: connection refused/);
    expect(s.at).toHaveLength(4);
    expect(clock.elapsed).toBeLessThanOrEqual(readinessBoundMs(probe()));
  });

  it('a probe that throws counts as a failure, an abort ends the loop', async () => {
    const clock = simulatedClock();
    const ac = new AbortController();
    let calls = 0;
    const once = async (): Promise<ProbeResult> => {
      if (++calls === 2) ac.abort(new EngineError('RestoreTimeout', 'deadline'));
      throw new Error('exec failed');
    };
    const err = await awaitReadiness(probe({ failureThreshold: 10 }), once, clock, ac.signal, 'x').catch((e: unknown) => e);
    expect((err as EngineError).code).toBe('RestoreTimeout');
    expect(calls).toBe(2);
  });
});

describe('template.ports', () => {
  const spec = (over: Partial<ReplicaSpec['template']> = {}): ReplicaSpec => ({
    owner: { uid: '0b6e1f6c-1111-4c4c-9c9c-123456789abc', namespace: 'team-a', name: 'web' },
    node: 'node-1',
    replicaId: 'r7',
    attempt: 1,
    templateHash: 'abc123',
    template: {
      image: 'img',
      ports: [
        { containerPort: 8080, protocol: 'TCP', name: 'http' },
        { containerPort: 53, protocol: 'UDP' },
      ],
      ...over,
    },
    checkpoint: { container: 'src', name: 'warm' },
  });

  it('publishes each on an ephemeral host port', () => {
    const o = buildCreateOptions({ spec: spec(), mode: 'restore', networkMode: 'served' });
    expect(o.ExposedPorts).toEqual({ '8080/tcp': {}, '53/udp': {} });
    expect(o.HostConfig?.PortBindings).toEqual({ '8080/tcp': [{ HostIp: '', HostPort: '' }], '53/udp': [{ HostIp: '', HostPort: '' }] });
  });

  it('refuses a network that cannot publish, naming the field', () => {
    for (const networkMode of ['none', 'host', 'container:abc']) {
      expect(() => buildCreateOptions({ spec: spec(), mode: 'restore', networkMode })).toThrow(/template\.ports: cannot be published on network/);
    }
  });

  it('reads published ports back once per port (Docker lists IPv4 and IPv6 bindings)', () => {
    expect(
      publishedPorts([
        { IP: '0.0.0.0', PrivatePort: 8080, PublicPort: 32768, Type: 'tcp' },
        { IP: '::', PrivatePort: 8080, PublicPort: 32768, Type: 'tcp' },
        { IP: '', PrivatePort: 9000, PublicPort: 0, Type: 'tcp' },
      ]),
    ).toEqual({ ports: [{ containerPort: 8080, protocol: 'TCP', hostPort: 32768 }] });
    expect(publishedPorts(undefined)).toEqual({});
  });
});
