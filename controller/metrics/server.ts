// The agent's HTTP endpoint: /metrics for Prometheus, /healthz for the liveness probe, /readyz for
// the readiness probe. node:http / node:https only; nothing else is served.
//
// Secure serving (the agent's default): HTTPS, and /metrics only for a bearer token that `guard`
// accepts (TokenReview + SubjectAccessReview, controller/kube/metrics-auth.ts). /healthz and /readyz
// stay open on the same port: the kubelet probes them without a token (scheme HTTPS, where it does
// not verify the certificate), and they say nothing but "ok" or why not.

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { MetricsError } from './errors.js';
import { parseListenAddress, type ListenAddress } from './listen-address.js';

/** A probe answers "ok" or why not; a plain boolean is accepted for convenience. */
type ProbeResult = boolean | { ok: true } | { ok: false; reason: string };
type Probe = () => ProbeResult | Promise<ProbeResult>;

/** The answer to "may the holder of this bearer token read /metrics?". */
type MetricsGuard = (token: string | undefined) => Promise<{ allowed: true } | { allowed: false; status: number; reason: string }>;

export interface MetricsServerOptions {
  registry: Registry;
  /** "host:port", ":port" or "[ipv6]:port" (port 0 = any free port), or an already parsed address. */
  address: string | ListenAddress;
  /**
   * /readyz: 200 once the caches have synced. Required: only the caller knows when that is.
   */
  ready: Probe;
  /**
   * /healthz: 200 while the process loop works (answering at all proves the event loop turns) and
   * the informers have not given up. Default: always healthy.
   */
  health?: Probe;
  /** Serve HTTPS with this certificate and key (PEM). Default: plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Who may read /metrics, given the request's bearer token. Default: anyone who reaches the port. */
  guard?: MetricsGuard;
  /** A probe that takes longer than this fails with 503. Default 5000 ms. */
  probeTimeoutMs?: number;
  /** close() waits this long for requests in progress, then cuts the connections. Default 5000 ms. */
  closeTimeoutMs?: number;
}

export interface MetricsServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: { host: string; port: number };
  /** A URL that reaches the server from this host, e.g. http://127.0.0.1:9464 (https:// when serving TLS). */
  readonly url: string;
  /** Stops accepting, lets requests in progress finish (bounded), then resolves. Idempotent. */
  close(): Promise<void>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const address = typeof options.address === 'string' ? parseListenAddress(options.address) : options.address;
  const routes: Routes = {
    registry: options.registry,
    guard: options.guard,
    ready: options.ready,
    health: options.health ?? (() => true),
    probeTimeoutMs: options.probeTimeoutMs ?? 5_000,
  };
  const listener = (request: IncomingMessage, response: ServerResponse): void => {
    void handle(routes, request, response).catch((error: unknown) => {
      // handle() answers every error itself; this only catches a failure to write the answer.
      if (!response.headersSent) respond(response, request, 500, `internal error: ${messageOf(error)}\n`);
      else response.destroy();
    });
  };
  const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener) : createHttpServer(listener);
  server.keepAliveTimeout = 65_000; // longer than Prometheus' idle connections, so no reset races
  await listen(server, address);

  const bound = server.address() as AddressInfo;
  const reachableHost = bound.address === '::' || bound.address === '0.0.0.0' ? '127.0.0.1' : bound.address;
  const urlHost = reachableHost.includes(':') ? `[${reachableHost}]` : reachableHost;
  return {
    address: { host: bound.address, port: bound.port },
    url: `${options.tls ? 'https' : 'http'}://${urlHost}:${bound.port}`,
    close: closer(server, options.closeTimeoutMs ?? 5_000),
  };
}

/** What the request handler needs, defaults applied. */
interface Routes {
  registry: Registry;
  guard: MetricsGuard | undefined;
  ready: Probe;
  health: Probe;
  probeTimeoutMs: number;
}

async function handle(routes: Routes, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? '/').split('?', 1)[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    respond(response, request, 405, 'method not allowed\n');
    return;
  }
  switch (path) {
    case '/metrics':
      return serveMetrics(routes, request, response);
    case '/healthz':
    case '/readyz': {
      const verdict = await runProbe(path === '/healthz' ? routes.health : routes.ready, routes.probeTimeoutMs);
      respond(response, request, verdict.ok ? 200 : verdict.status, verdict.ok ? 'ok\n' : `${verdict.reason}\n`);
      return;
    }
    default:
      respond(response, request, 404, 'not found: this server serves /metrics, /healthz and /readyz\n');
  }
}

async function serveMetrics(routes: Routes, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (routes.guard) {
    const access = await routes.guard(bearerToken(request));
    if (!access.allowed) {
      if (access.status === 401) response.setHeader('WWW-Authenticate', 'Bearer');
      respond(response, request, access.status, `${access.reason}\n`);
      return;
    }
  }
  let body: string;
  try {
    body = await routes.registry.metrics();
  } catch (error) {
    respond(response, request, 500, `collecting metrics failed: ${messageOf(error)}\n`);
    return;
  }
  respond(response, request, 200, body, routes.registry.contentType);
}

/** Binds `server`, turning a listen error into a MetricsError that says what to do. */
function listen(server: Server, address: ListenAddress): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(
        new MetricsError(
          'ListenFailed',
          `metrics server: cannot listen on ${address.host ?? '*'}:${address.port}: ${error.code ?? error.message}` +
            (error.code === 'EADDRINUSE' ? ' (another process uses the port; pick another --metrics-address)' : ''),
          { cause: error },
        ),
      );
    };
    server.once('error', onError);
    server.listen(address.port, address.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** An idempotent close(): stop accepting, let requests in progress finish, cut them after `closeTimeoutMs`. */
function closer(server: Server, closeTimeoutMs: number): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), closeTimeoutMs);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      // Keep-alive connections with no request in progress would otherwise hold close() open.
      server.closeIdleConnections();
    });
    return closing;
  };
}

type Verdict = { ok: true } | { ok: false; status: number; reason: string };

async function runProbe(probe: Probe, timeoutMs: number): Promise<Verdict> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Verdict>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, status: 503, reason: `probe did not answer within ${timeoutMs} ms` }), timeoutMs);
  });
  const answer = (async (): Promise<Verdict> => {
    try {
      const result = await probe();
      if (result === true) return { ok: true };
      if (result === false) return { ok: false, status: 503, reason: 'not ok' };
      return result.ok ? { ok: true } : { ok: false, status: 503, reason: result.reason };
    } catch (error) {
      return { ok: false, status: 500, reason: `probe failed: ${messageOf(error)}` };
    }
  })();
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function respond(response: ServerResponse, request: IncomingMessage, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  response.statusCode = status;
  response.setHeader('Content-Type', contentType);
  response.setHeader('Content-Length', Buffer.byteLength(body));
  response.setHeader('Cache-Control', 'no-store');
  response.end(request.method === 'HEAD' ? undefined : body);
}

function bearerToken(request: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  return m?.[1];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
