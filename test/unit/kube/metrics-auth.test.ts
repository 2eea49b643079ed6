// The metrics authorizer's own logic (cache, deadline, the mapping of review answers to 401/403/503)
// against a stand-in apiserver on a loopback HTTPS socket. The real apiserver is used by
// test/integration/security/metrics-access.test.ts.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetricsAuthorizer } from '../../../controller/kube/metrics-auth.js';
import { selfSignedCertificate } from '../../../controller/metrics/self-signed.js';

const tls = selfSignedCertificate('fake-apiserver', ['127.0.0.1']);
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

interface Fake {
  kc: KubeConfig;
  calls: { path: string; body: Record<string, unknown>; auth: string | undefined }[];
}

/** Users by token; `allowed` lists the users that may get /metrics. `hang`: never answer. */
async function fakeApiserver(users: Record<string, string>, allowed: string[], hang = false): Promise<Fake> {
  const calls: Fake['calls'] = [];
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(text) as { spec: { token?: string; user?: string } };
      calls.push({ path: req.url ?? '', body, auth: req.headers.authorization });
      if (hang) return;
      const status = req.url?.includes('tokenreviews')
        ? users[body.spec.token ?? '']
          ? { authenticated: true, user: { username: users[body.spec.token ?? ''], groups: ['g'] } }
          : { authenticated: false }
        : { allowed: allowed.includes(body.spec.user ?? '') };
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ status }));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caData: Buffer.from(tls.cert).toString('base64') }],
    users: [{ name: 'agent', token: 'agent-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'agent' }],
    currentContext: 'x',
  });
  return { kc, calls };
}

describe('createMetricsAuthorizer', () => {
  it('401 without or with an unknown token, 403 for a user without the grant, allowed with it; reviews ask for get /metrics as the agent', async () => {
    const fake = await fakeApiserver({ good: 'scraper', other: 'stranger' }, ['scraper']);
    const auth = createMetricsAuthorizer(fake.kc);
    expect(await auth.check(undefined)).toMatchObject({ allowed: false, status: 401 });
    expect(await auth.check('nope')).toMatchObject({ allowed: false, status: 401 });
    expect(await auth.check('other')).toMatchObject({ allowed: false, status: 403 });
    expect(await auth.check('good')).toEqual({ allowed: true, user: 'scraper' });
    const sar = fake.calls.find((c) => c.path.includes('subjectaccessreviews') && (c.body['spec'] as { user: string }).user === 'scraper');
    expect(sar?.body['spec']).toEqual({ user: 'scraper', groups: ['g'], nonResourceAttributes: { path: '/metrics', verb: 'get' } });
    expect(fake.calls.every((c) => c.auth === 'Bearer agent-token')).toBe(true);
  });

  it('reuses an answer for the TTL (a scrape every few seconds costs no review), then asks again', async () => {
    const fake = await fakeApiserver({ good: 'scraper' }, ['scraper']);
    let now = 1_000_000;
    const auth = createMetricsAuthorizer(fake.kc, { cacheTtlMs: 10_000, now: () => now });
    for (let i = 0; i < 5; i++) expect((await auth.check('good')).allowed).toBe(true);
    expect(fake.calls).toHaveLength(2); // one TokenReview, one SubjectAccessReview
    now += 10_001;
    await auth.check('good');
    expect(fake.calls).toHaveLength(4);
  });

  it('answers 503 at the deadline when the apiserver does not answer, and does not cache that', async () => {
    const fake = await fakeApiserver({}, [], true);
    const auth = createMetricsAuthorizer(fake.kc, { timeoutMs: 300 });
    const started = Date.now();
    expect(await auth.check('good')).toMatchObject({ allowed: false, status: 503 });
    expect(Date.now() - started).toBeLessThan(5_000);
    await auth.check('good');
    expect(fake.calls).toHaveLength(2);
  });
});
