import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseEventLine, watchContainers } from '../../../controller/engine/events-stream.js';
import type { ContainerWatchEvent } from '../../../controller/engine/types.js';

// Lines as Docker 26.1 wrote them on /events (captured on the test bed, labels trimmed to ours).
const DIE =
  '{"status":"die","id":"a787","from":"crs-sample-app:latest","Type":"container","Action":"die","Actor":{"ID":"a787","Attributes":' +
  '{"checkpoint.dev/owner-uid":"uid-1","checkpoint.dev/owner-namespace":"ns","checkpoint.dev/owner-name":"web","checkpoint.dev/replica-id":"3",' +
  '"execDuration":"11","exitCode":"137","image":"crs-sample-app:latest","name":"web-3-1"}},"scope":"local","time":1796282796,"timeNano":1796282796218478681}';
const KILL =
  '{"status":"kill","id":"a787","Type":"container","Action":"kill","Actor":{"ID":"a787","Attributes":{"checkpoint.dev/owner-uid":"uid-1","signal":"15"}},"time":1796282786}';
const HEALTH =
  '{"Type":"container","Action":"health_status: unhealthy","Actor":{"ID":"b1","Attributes":{"checkpoint.dev/owner-uid":"uid-2"}},"time":1796282790}';
const FOREIGN = '{"Type":"container","Action":"die","Actor":{"ID":"c1","Attributes":{"name":"someone-else"}},"time":1796282790}';

describe('parseEventLine', () => {
  it('reads a die of a replica: owner, slot, exit code, time', () => {
    expect(parseEventLine(DIE)).toEqual({
      action: 'die',
      containerId: 'a787',
      ownerUid: 'uid-1',
      ownerNamespace: 'ns',
      ownerName: 'web',
      replicaId: '3',
      detail: '137',
      at: new Date(1796282796218.478),
    });
  });

  it('reads health_status with its status as the detail', () => {
    expect(parseEventLine(HEALTH)).toMatchObject({ action: 'health_status', ownerUid: 'uid-2', detail: 'unhealthy' });
  });

  it('ignores actions that change nothing (kill comes before die), foreign containers and garbage', () => {
    expect(parseEventLine(KILL)).toBeUndefined();
    expect(parseEventLine(FOREIGN)).toBeUndefined();
    expect(parseEventLine('{"Type":"network","Action":"connect"}')).toBeUndefined();
    expect(parseEventLine('not json')).toBeUndefined();
    expect(parseEventLine('null')).toBeUndefined();
  });
});

/** A Docker whose /events answers with streams the test controls, or fails while `down`. */
function fakeDocker() {
  const streams: PassThrough[] = [];
  const calls: unknown[] = [];
  const docker = {
    down: false,
    streams,
    calls,
    async getEvents(options: unknown) {
      calls.push(options);
      if (docker.down) throw Object.assign(new Error('connect ENOENT /run/docker.sock'), { code: 'ENOENT' });
      const s = new PassThrough();
      streams.push(s);
      return s;
    },
  };
  return docker;
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('watchContainers', () => {
  it('filters on the owner label, passes replica changes split across chunks, and reports lost then resumed once subscribed again', async () => {
    const docker = fakeDocker();
    const seen: ContainerWatchEvent[] = [];
    const watch = watchContainers({ docker: docker as never, listener: (e) => seen.push(e), retry: { initialMs: 5, maxMs: 20 } });
    await until(() => docker.streams.length === 1);
    expect(docker.calls[0]).toMatchObject({ filters: { type: ['container'], label: ['checkpoint.dev/owner-uid'] } });
    expect(watch.connected).toBe(true);
    docker.streams[0]!.write(KILL + '\n' + DIE.slice(0, 40));
    docker.streams[0]!.write(DIE.slice(40) + '\n');
    await until(() => seen.length === 1);
    expect(seen[0]).toMatchObject({ type: 'replica', change: { action: 'die', ownerUid: 'uid-1' } });

    // The engine goes away: the stream ends and resubscribing fails for a while.
    docker.down = true;
    docker.streams[0]!.end();
    await until(() => seen.some((e) => e.type === 'lost'));
    expect(watch.connected).toBe(false);
    await until(() => docker.calls.length >= 4);
    expect(seen.filter((e) => e.type === 'lost')).toHaveLength(1);
    expect(seen.some((e) => e.type === 'resumed')).toBe(false);

    docker.down = false;
    await until(() => seen.some((e) => e.type === 'resumed'));
    const resumed = seen.find((e) => e.type === 'resumed')!;
    const lost = seen.find((e) => e.type === 'lost')!;
    expect(resumed.type === 'resumed' && lost.type === 'lost' && resumed.lostAt).toEqual(lost.type === 'lost' && lost.at);
    expect(watch.connected).toBe(true);
    docker.streams.at(-1)!.write(HEALTH + '\n');
    await until(() => seen.at(-1)?.type === 'replica');

    await watch.stop();
    expect(watch.connected).toBe(false);
    const calls = docker.calls.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(docker.calls).toHaveLength(calls);
  });

  it('a stream that errors counts as a break; a listener that throws does not stop the stream', async () => {
    const docker = fakeDocker();
    const seen: string[] = [];
    const watch = watchContainers({
      docker: docker as never,
      listener: (e) => {
        seen.push(e.type);
        throw new Error('listener bug');
      },
      retry: { initialMs: 5, maxMs: 5 },
    });
    await until(() => docker.streams.length === 1);
    docker.streams[0]!.write(DIE + '\n');
    docker.streams[0]!.destroy(new Error('read ECONNRESET'));
    await until(() => seen.includes('resumed'));
    docker.streams.at(-1)!.write(DIE + '\n');
    await until(() => seen.filter((t) => t === 'replica').length === 2);
    expect(seen).toEqual(['replica', 'lost', 'resumed', 'replica']);
    await watch.stop();
  });
});
