// The server against a real loopback socket and a real registry (no services needed).
import { X509Certificate } from 'node:crypto';
import { request as httpRequest, Agent } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MetricsError } from '../../../controller/metrics/errors.js';
import { createMetrics } from '../../../controller/metrics/metrics.js';
import { selfSignedCertificate } from '../../../controller/metrics/self-signed.js';
import { startMetricsServer, type MetricsServer, type MetricsServerOptions } from '../../../controller/metrics/server.js';

const open: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function start(overrides: Partial<MetricsServerOptions> = {}) {
  const metrics = createMetrics({ version: '9.9.9' });
  const server = await startMetricsServer({ registry: metrics.registry, address: '127.0.0.1:0', ready: () => true, ...overrides });
  open.push(server);
  return { metrics, server };
}

async function get(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text(), headers: res.headers };
}

describe('metrics server', () => {
  it('serves the registry on /metrics with its content type', async () => {
    const { metrics, server } = await start();
    metrics.replicaCounts({ namespace: 'shop', name: 'web' }, 'n1', { desired: 45, ready: 12, restoring: 10, failed: 0 });
    expect(server.address.port).toBeGreaterThan(0);
    const res = await get(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.type).toBe(metrics.registry.contentType);
    expect(res.body).toContain('crs_replicas_ready{namespace="shop",name="web",node="n1"} 12');
    expect(res.body).toContain('# TYPE crs_restore_duration_seconds histogram');
    expect(res.body).toContain('process_cpu_user_seconds_total');
    expect(res.body).toContain(`crs_build_info{version="9.9.9",node_version="${process.version}"} 1`);
  });

  it('/healthz is 200 by default and follows the health callback with its reason', async () => {
    let healthy: boolean | { ok: false; reason: string } = true;
    const { server } = await start({ health: () => healthy });
    expect(await get(`${server.url}/healthz`)).toMatchObject({ status: 200, body: 'ok\n' });
    healthy = { ok: false, reason: 'informer gave up after 12 watch errors' };
    expect(await get(`${server.url}/healthz`)).toMatchObject({ status: 503, body: 'informer gave up after 12 watch errors\n' });
    healthy = false;
    expect((await get(`${server.url}/healthz`)).status).toBe(503);

    const { server: plain } = await start();
    expect((await get(`${plain.url}/healthz`)).status).toBe(200);
  });

  it('/readyz turns 200 once the caches have synced', async () => {
    let synced = false;
    const { server } = await start({ ready: async () => (synced ? true : { ok: false, reason: 'caches not synced' }) });
    expect(await get(`${server.url}/readyz`)).toMatchObject({ status: 503, body: 'caches not synced\n' });
    synced = true;
    expect(await get(`${server.url}/readyz`)).toMatchObject({ status: 200, body: 'ok\n' });
  });

  it('a probe that throws answers 500, one that hangs answers 503, and the server keeps serving', async () => {
    const { server } = await start({
      health: () => {
        throw new Error('loop check exploded');
      },
      ready: () => new Promise<boolean>(() => {}),
      probeTimeoutMs: 50,
    });
    expect(await get(`${server.url}/healthz`)).toMatchObject({ status: 500, body: 'probe failed: loop check exploded\n' });
    expect(await get(`${server.url}/readyz`)).toMatchObject({ status: 503, body: 'probe did not answer within 50 ms\n' });
    expect((await get(`${server.url}/metrics`)).status).toBe(200);
  });

  it('answers 404 for other paths, 405 for other methods, and HEAD without a body', async () => {
    const { server } = await start();
    expect((await get(`${server.url}/`)).status).toBe(404);
    expect((await get(`${server.url}/metricsx`)).status).toBe(404);
    const post = await get(`${server.url}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await get(`${server.url}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect((await get(`${server.url}/metrics?format=x`)).status).toBe(200);
  });

  it('fails with ListenFailed naming the address when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const attempt = startMetricsServer({ registry: createMetrics({ version: 'x' }).registry, address: `127.0.0.1:${port}`, ready: () => true });
      await expect(attempt).rejects.toBeInstanceOf(MetricsError);
      await expect(attempt).rejects.toMatchObject({ code: 'ListenFailed' });
      await expect(attempt).rejects.toThrow(new RegExp(`cannot listen on 127.0.0.1:${port}: EADDRINUSE`));
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('rejects a bad address before binding anything', async () => {
    await expect(startMetricsServer({ registry: createMetrics({ version: 'x' }).registry, address: 'nope', ready: () => true })).rejects.toMatchObject({
      code: 'InvalidAddress',
    });
  });

  it('closes gracefully with a keep-alive connection open, and close() is idempotent', async () => {
    const { server } = await start();
    const agent = new Agent({ keepAlive: true });
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/metrics`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(agent.freeSockets).not.toEqual({}); // the connection stays open, idle
    await Promise.all([server.close(), server.close()]);
    await expect(fetch(`${server.url}/metrics`)).rejects.toThrow();
    agent.destroy();
  });
});

describe('secure serving (issue 9): HTTPS, and /metrics only for tokens the guard accepts', () => {
  function httpsGet(url: string, ca: string, token?: string): Promise<{ status: number; body: string; auth?: string }> {
    return new Promise((resolve, reject) => {
      httpsRequest(url, { ca, servername: 'localhost', headers: token ? { Authorization: `Bearer ${token}` } : {} }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, ...(res.headers['www-authenticate'] ? { auth: String(res.headers['www-authenticate']) } : {}) }),
        );
      })
        .on('error', reject)
        .end();
    });
  }

  it('answers 401 without a token, 403 for a refused one, the metrics for an allowed one; probes need none', async () => {
    const tls = selfSignedCertificate('t', ['localhost', '127.0.0.1']);
    const seen: (string | undefined)[] = [];
    const { server } = await start({
      tls,
      guard: async (token) => {
        seen.push(token);
        if (!token) return { allowed: false, status: 401, reason: 'Unauthorized' };
        return token === 'good' ? { allowed: true } : { allowed: false, status: 403, reason: 'Forbidden' };
      },
    });
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const none = await httpsGet(`${server.url}/metrics`, tls.cert);
    expect(none).toMatchObject({ status: 401, auth: 'Bearer' });
    expect((await httpsGet(`${server.url}/metrics`, tls.cert, 'bad')).status).toBe(403);
    const ok = await httpsGet(`${server.url}/metrics`, tls.cert, 'good');
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('crs_build_info');
    expect((await httpsGet(`${server.url}/healthz`, tls.cert)).status).toBe(200);
    expect((await httpsGet(`${server.url}/readyz`, tls.cert)).status).toBe(200);
    expect(seen).toEqual([undefined, 'bad', 'good']); // probes never consult the guard
  });

  it('makes a self-signed certificate that verifies, names the given hosts and is valid now', () => {
    const { cert } = selfSignedCertificate('crs-controller-n1', ['localhost', 'n1', '127.0.0.1', '::1']);
    const x = new X509Certificate(cert);
    expect(x.subject).toBe('CN=crs-controller-n1');
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.checkHost('n1')).toBe('n1');
    expect(x.checkIP('::1')).toBe('::1');
    expect(new Date(x.validFrom).getTime()).toBeLessThan(Date.now());
    expect(new Date(x.validTo).getTime()).toBeGreaterThan(Date.now() + 300 * 86_400_000);
  });

  it('every certificate it makes parses: the random serial is always minimal DER (a crash at start once in 256 before)', () => {
    // A serial starting 0x00 then a byte below 0x80 is refused by OpenSSL ("illegal padding"), which
    // crashed the agent at start; 2000 certificates hit that with probability 1 - (255/256)^2000.
    const serials = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const x = new X509Certificate(selfSignedCertificate('n', ['localhost']).cert);
      serials.add(x.serialNumber);
    }
    expect(serials.size).toBe(2000);
    // 2000 signatures: seconds alone, a minute on a loaded 2-core machine (a correctness test, not a timed one).
  }, 120_000);
});
