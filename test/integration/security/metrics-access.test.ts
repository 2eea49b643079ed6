// /metrics names every tenant's resources: the agent serves it over HTTPS to bearer tokens the real
// apiserver authenticates (TokenReview) and authorizes for get on the non-resource URL /metrics
// (SubjectAccessReview), as controller-runtime's secure metrics serving does. The agent runs as the
// ServiceAccount of manifests/ with its ClusterRole, so the shipped RBAC is proven enough; the
// scraper is bound to the shipped crs-controller-metrics-reader ClusterRole; the real Prometheus of
// the test bed scrapes it with a bearer token.
import { mkdirSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, type HttpsAnswer } from '../support/https.js';
import { selfSignedCertificate } from '../../../controller/metrics/self-signed.js';
import { testbed } from '../testbed.js';
import { serviceAccountKubeconfig, startAgent, type RunningAgent } from '../support/agent.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { startPrometheus, type RunningPrometheus } from '../support/prometheus.js';

const bed = testbed();
const k = kubectl(bed);
// Unique per run: a namespace deleted by an earlier run may still be terminating.
const ns = `crs-metrics-it-${Date.now().toString(36)}`;
const binding = `${ns}-scraper`;
let dir: string;
let cert: { cert: string; key: string };
let agent: RunningAgent | undefined;
let prom: RunningPrometheus | undefined;
const tokens: Record<'scraper' | 'stranger', string> = { scraper: '', stranger: '' };

/** GET over HTTPS, verifying the agent's certificate (issued for localhost) with the test's CA. */
function get(url: string, token?: string): Promise<HttpsAnswer> {
  return httpsGet(url, { ca: cert.cert, servername: 'localhost', ...(token ? { token } : {}) });
}

beforeAll(async () => {
  dir = path.join(bed.repoRoot, '.local', `metrics-it-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  cert = selfSignedCertificate('crs-metrics-it', ['localhost', '127.0.0.1']);
  writeFileSync(path.join(dir, 'tls.crt'), cert.cert);
  writeFileSync(path.join(dir, 'tls.key'), cert.key, { mode: 0o600 });

  await installCrd(bed);
  const agentKubeconfig = await serviceAccountKubeconfig(bed, k);
  await k('apply', '--server-side', '--force-conflicts', '-f', path.join(bed.repoRoot, 'manifests', 'metrics-reader-clusterrole.yaml'));
  await k('create', 'namespace', ns).catch(() => '');
  for (const sa of ['scraper', 'stranger'] as const) {
    await k('create', 'serviceaccount', sa, '-n', ns).catch(() => '');
    tokens[sa] = (await k('create', 'token', sa, '-n', ns, '--duration=1h')).trim();
  }
  await k('create', 'clusterrolebinding', binding, '--clusterrole=crs-controller-metrics-reader', `--serviceaccount=${ns}:scraper`).catch(() => '');

  agent = await startAgent(bed, {
    nodeName: 'metrics-it-node',
    namespace: ns,
    kubeconfig: agentKubeconfig,
    secureMetrics: { certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key') },
  });
  // The probes need no token (the kubelet sends none).
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await get(`${agent.metricsUrl}/readyz`).catch(() => undefined);
    if (ready?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`agent not ready over HTTPS within 60 s (last: ${ready?.status}); see ${agent.logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
});

afterAll(async () => {
  await prom?.stop();
  await agent?.kill('SIGTERM');
  await k('delete', 'clusterrolebinding', binding, '--ignore-not-found').catch(() => '');
  await k('delete', 'namespace', ns, '--ignore-not-found', '--wait=false').catch(() => '');
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('secure metrics serving', () => {
  it('a token allowed to get /metrics reads it; another gets 403, none or a bad one 401; probes stay open', async () => {
    const allowed = await get(`${agent!.metricsUrl}/metrics`, tokens.scraper);
    expect(allowed.status).toBe(200);
    expect(allowed.body).toContain('crs_build_info');
    const forbidden = await get(`${agent!.metricsUrl}/metrics`, tokens.stranger);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).not.toContain('crs_');
    for (const token of [undefined, 'not-a-token']) {
      const anonymous = await get(`${agent!.metricsUrl}/metrics`, token);
      expect(anonymous.status, String(token)).toBe(401);
      expect(anonymous.body).not.toContain('crs_');
    }
    expect((await get(`${agent!.metricsUrl}/healthz`)).status).toBe(200);
    // Plain HTTP is not served on the port at all.
    const plain = await fetch(agent!.metricsUrl.replace('https:', 'http:') + '/metrics').then(
      (r) => r.status,
      () => 'refused',
    );
    expect(plain).not.toBe(200);
  });

  it('the real Prometheus scrapes it over HTTPS with a bearer token; with a token not allowed, the target is down', async () => {
    writeFileSync(path.join(dir, 'scraper.token'), tokens.scraper, { mode: 0o600 });
    writeFileSync(path.join(dir, 'stranger.token'), tokens.stranger, { mode: 0o600 });
    const target = new URL(agent!.metricsUrl).host;
    const https = { caFile: path.join(dir, 'tls.crt'), serverName: 'localhost' };
    prom = await startPrometheus({
      jobs: [
        { job: 'crs-agent', targets: [target], https, bearerTokenFile: path.join(dir, 'scraper.token') },
        { job: 'crs-agent-stranger', targets: [target], https, bearerTokenFile: path.join(dir, 'stranger.token') },
      ],
    });
    await prom.waitFor('up{job="crs-agent"}', (r) => r[0]?.value === 1, 60_000);
    const info = await prom.waitFor('crs_build_info{job="crs-agent"}', (r) => r.length === 1, 60_000);
    expect(info[0]?.value).toBe(1);
    const stranger = await prom.waitFor('up{job="crs-agent-stranger"}', (r) => r.length === 1, 60_000);
    expect(stranger[0]?.value).toBe(0);
    expect(await prom.query('crs_build_info{job="crs-agent-stranger"}')).toEqual([]);
  });
});
