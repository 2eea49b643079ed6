// Who may read /metrics (it names every tenant's resources): the apiserver decides, as for
// controller-runtime's secure metrics serving. The bearer token is authenticated with a TokenReview,
// and the user it names is authorized with a SubjectAccessReview for `get` on the non-resource URL
// /metrics (granted by a ClusterRole with nonResourceURLs: ["/metrics"]). Answers are cached briefly
// (keyed by a hash of the token), so a scrape every few seconds costs the apiserver little.
//
// Both reviews are plain POSTs made here with node:https so each has a real deadline and is aborted
// at it; the KubeConfig supplies the server, its CA and the agent's own credentials.

import { createHash } from 'node:crypto';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiError, codeForStatus } from './api-error.js';

type MetricsAccess =
  | { allowed: true; user: string }
  /** 401: no or unknown token; 403: a known user without the grant; 503: the apiserver could not tell. */
  | { allowed: false; status: 401 | 403 | 503; reason: string };

export interface MetricsAuthorizer {
  /** The Authorization header's bearer token (undefined when none was sent). */
  check(token: string | undefined): Promise<MetricsAccess>;
}

export interface MetricsAuthorizerOptions {
  /** Deadline of each review request. Default 5000 ms. */
  timeoutMs?: number;
  /** How long an answer (allowed or not) is reused. Default 10 s, as the apiserver's own delegated authn/authz. */
  cacheTtlMs?: number;
  /** Most tokens remembered. Default 1024. */
  cacheSize?: number;
  now?: () => number;
}

interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** The non-resource request every scrape must be allowed. */
const METRICS_PATH = '/metrics';

export function createMetricsAuthorizer(kc: KubeConfig, options: MetricsAuthorizerOptions = {}): MetricsAuthorizer {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const ttl = options.cacheTtlMs ?? 10_000;
  const size = options.cacheSize ?? 1024;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { until: number; access: MetricsAccess }>();

  async function review(token: string): Promise<MetricsAccess> {
    const tokenReview = await post<{ status?: { authenticated?: boolean; user?: UserInfo; error?: string } }>(
      kc,
      '/apis/authentication.k8s.io/v1/tokenreviews',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
      timeoutMs,
    );
    const user = tokenReview.status?.user;
    if (!tokenReview.status?.authenticated || !user?.username)
      return { allowed: false, status: 401, reason: 'Unauthorized: the bearer token was not accepted' };
    const sar = await post<{ status?: { allowed?: boolean } }>(
      kc,
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: user.username,
          ...(user.uid ? { uid: user.uid } : {}),
          ...(user.groups ? { groups: user.groups } : {}),
          ...(user.extra ? { extra: user.extra } : {}),
          nonResourceAttributes: { path: METRICS_PATH, verb: 'get' },
        },
      },
      timeoutMs,
    );
    if (sar.status?.allowed === true) return { allowed: true, user: user.username };
    return { allowed: false, status: 403, reason: `Forbidden: user "${user.username}" may not get ${METRICS_PATH}` };
  }

  return {
    async check(token) {
      if (!token) return { allowed: false, status: 401, reason: 'Unauthorized: send a bearer token (Authorization: Bearer <token>)' };
      const key = createHash('sha256').update(token).digest('hex');
      const hit = cache.get(key);
      if (hit && hit.until > now()) return hit.access;
      let access: MetricsAccess;
      try {
        access = await review(token);
      } catch (err) {
        // Not cached: the next scrape asks again.
        return { allowed: false, status: 503, reason: `cannot verify the token now: ${(err as Error).message}` };
      }
      cache.delete(key);
      cache.set(key, { until: now() + ttl, access });
      // Maps keep insertion order: drop the oldest beyond the bound.
      while (cache.size > size) cache.delete(cache.keys().next().value as string);
      return access;
    },
  };
}

/** POST a JSON body to the apiserver with the agent's credentials; aborted at the deadline. */
async function post<T>(kc: KubeConfig, path: string, body: unknown, timeoutMs: number): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ApiError('Invalid', `POST ${path}: the kubeconfig names no cluster`, undefined);
  const url = new URL(path, cluster.server);
  const opts: https.RequestOptions = { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const payload = JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = https.request(url, { ...opts, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          reject(new ApiError(codeForStatus(status), `POST ${path}: HTTP ${status}: ${text.slice(0, 300)}`, status));
          return;
        }
        try {
          resolve(JSON.parse(text) as T);
        } catch (err) {
          reject(new ApiError('Unknown', `POST ${path}: the apiserver answered with no JSON`, status, undefined, { cause: err }));
        }
      });
      res.on('error', reject);
    });
    req.on('error', (err) => reject(new ApiError('Unavailable', `POST ${path}: ${err.message}`, undefined, undefined, { cause: err })));
    req.end(payload);
  });
}
