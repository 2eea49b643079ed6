// The agent serves /metrics, /healthz and /readyz over HTTPS by default (README Security model):
// what the end-to-end tests need to read them as a kubelet probe or a Prometheus scraper would.
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { Testbed } from '../testbed.js';

export interface HttpsAnswer {
  status: number;
  body: string;
}

export interface HttpsGetOptions {
  /** Bearer token (for /metrics). */
  token?: string;
  /** Verify the agent's certificate with this CA (PEM) and server name; without it, as a kubelet probe does, do not verify. */
  ca?: string | Buffer;
  servername?: string;
  timeoutMs?: number;
}

/** GET over HTTPS. */
export function httpsGet(url: string, options: HttpsGetOptions = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const tls = options.ca ? { ca: options.ca, ...(options.servername ? { servername: options.servername } : {}) } : { rejectUnauthorized: false };
    const headers = options.token ? { Authorization: `Bearer ${options.token}` } : {};
    const req = https.get(url, { ...tls, headers, timeout: options.timeoutMs ?? 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/**
 * A scraper's bearer token: ServiceAccount `crs-scraper` in `namespace`, bound to the base's
 * ClusterRole crs-controller-metrics-reader (get on the non-resource URL /metrics), as the monitoring
 * kustomization binds Prometheus. Returns the token and a file holding it (for Prometheus); the
 * ClusterRoleBinding is named `crs-scraper-<namespace>` (delete it after the run).
 */
export async function metricsReaderToken(
  bed: Testbed,
  run: (...args: string[]) => Promise<string>,
  namespace: string,
): Promise<{ token: string; file: string; binding: string }> {
  await run('apply', '--server-side', '--force-conflicts', '-f', path.join(bed.repoRoot, 'manifests/metrics-reader-clusterrole.yaml'));
  await run('-n', namespace, 'create', 'serviceaccount', 'crs-scraper');
  const binding = `crs-scraper-${namespace}`;
  await run('create', 'clusterrolebinding', binding, '--clusterrole=crs-controller-metrics-reader', `--serviceaccount=${namespace}:crs-scraper`);
  const token = (await run('-n', namespace, 'create', 'token', 'crs-scraper', '--duration=2h')).trim();
  const file = path.join(bed.repoRoot, '.local', `${binding}.token`);
  writeFileSync(file, token, { mode: 0o600 });
  return { token, file, binding };
}
