// A real Prometheus server for integration and end-to-end tests: Debian's `prometheus` binary on a
// free loopback port, with a temporary config and data directory, scraping the given targets every
// second. Use query() for PromQL and waitFor() to wait until a query's answer satisfies a condition.
//
//   const prom = await startPrometheus({ jobs: [{ job: 'crs-agent', targets: ['127.0.0.1:9464'] }] });
//   try { await prom.waitFor('crs_replicas_ready', (r) => r[0]?.value === 45); } finally { await prom.stop(); }

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';

interface ScrapeJob {
  /** The `job` label, e.g. "crs-agent" (what manifests/monitoring/alerts.rules.yaml selects on). */
  job: string;
  /** host:port of each target. */
  targets: string[];
  /** Default /metrics. */
  metricsPath?: string;
  /** Extra labels on every target of this job (e.g. { node: 'n1' }). */
  labels?: Record<string, string>;
  /**
   * Scrape over HTTPS, verifying the target's certificate with this CA file (PEM) and server name, or
   * (insecureSkipVerify) not at all, as a ServiceMonitor for the agent's self-signed certificate does.
   */
  https?: { caFile: string; serverName: string } | { insecureSkipVerify: true };
  /** Send `Authorization: Bearer <contents of this file>` with every scrape. */
  bearerTokenFile?: string;
}

export interface StartPrometheusOptions {
  jobs: ScrapeJob[];
  /** Prometheus rules files (absolute paths) to load and evaluate, e.g. the project's alert rules. */
  ruleFiles?: string[];
  /** Scrape and rule evaluation interval. Default 1 s. */
  intervalSeconds?: number;
  /** Default `prometheus` from PATH. */
  binary?: string;
  /** How long to wait for /-/ready. Default 30 s. */
  startTimeoutMs?: number;
}

interface PromSample {
  metric: Record<string, string>;
  value: number;
}

export interface RunningPrometheus {
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly dataDir: string;
  /** Instant query; a vector answer gives one sample per series, a scalar one sample with no labels. */
  query(promql: string): Promise<PromSample[]>;
  /**
   * Polls query(promql) every 250 ms until `accept` returns true, and returns that answer; throws
   * with the last answer after timeoutMs (default 30 s). For waiting on scrapes, not for timing.
   */
  waitFor(promql: string, accept: (samples: PromSample[]) => boolean, timeoutMs?: number): Promise<PromSample[]>;
  /** Prometheus' own log so far (stderr), for failure messages. */
  log(): string;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its data directory. Idempotent. */
  stop(): Promise<void>;
}

class PrometheusError extends Error {
  override readonly name = 'PrometheusError';
  constructor(
    readonly code: 'NotInstalled' | 'StartFailed' | 'QueryFailed' | 'Timeout',
    message: string,
  ) {
    super(message);
  }
}

export async function startPrometheus(options: StartPrometheusOptions): Promise<RunningPrometheus> {
  const interval = `${options.intervalSeconds ?? 1}s`;
  const dir = mkdtempSync(path.join(tmpdir(), 'crs-prometheus-'));
  const dataDir = path.join(dir, 'data');
  const configFile = path.join(dir, 'prometheus.yml');
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: options.jobs.map((job) => ({
      job_name: job.job,
      metrics_path: job.metricsPath ?? '/metrics',
      static_configs: [{ targets: job.targets, labels: job.labels ?? {} }],
      ...(job.https
        ? {
            scheme: 'https',
            tls_config: 'caFile' in job.https ? { ca_file: job.https.caFile, server_name: job.https.serverName } : { insecure_skip_verify: true },
          }
        : {}),
      ...(job.bearerTokenFile ? { authorization: { type: 'Bearer', credentials_file: job.bearerTokenFile } } : {}),
    })),
  };
  writeFileSync(configFile, stringify(config));

  // Another process may take the port between probing and binding it: try a few ports.
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freeLoopbackPort();
    try {
      return await launch(options, configFile, dataDir, dir, port);
    } catch (error) {
      lastError = error;
      if (!(error instanceof PrometheusError && error.code === 'StartFailed' && /address already in use/.test(error.message))) break;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError;
}

async function launch(options: StartPrometheusOptions, configFile: string, dataDir: string, dir: string, port: number): Promise<RunningPrometheus> {
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    options.binary ?? 'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    const early = await Promise.race([
      exited.then((e) => `exited (code ${e.code}, signal ${e.signal})`),
      spawnError.then((e) => e),
      sleep(200).then(() => undefined),
    ]);
    if (early instanceof Error) {
      const missing = (early as NodeJS.ErrnoException).code === 'ENOENT';
      throw new PrometheusError(
        missing ? 'NotInstalled' : 'StartFailed',
        missing ? 'prometheus is not on PATH: apt-get install -y prometheus (hack/install-tools.sh does it)' : `prometheus: ${early.message}`,
      );
    }
    if (typeof early === 'string') throw new PrometheusError('StartFailed', `prometheus ${early} before it was ready:\n${stderr}`);
    if (
      await fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) {
      await terminate(child, exited);
      throw new PrometheusError('Timeout', `prometheus was not ready at ${url} within ${options.startTimeoutMs ?? 30_000} ms:\n${stderr}`);
    }
  }

  let stopping: Promise<void> | undefined;
  const query = async (promql: string): Promise<PromSample[]> => {
    const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql }).toString()}`);
    const body = (await res.json()) as PromResponse;
    if (body.status !== 'success' || !body.data) {
      throw new PrometheusError('QueryFailed', `query ${JSON.stringify(promql)}: HTTP ${res.status} ${body.errorType ?? ''} ${body.error ?? ''}`.trim());
    }
    return toSamples(body.data);
  };

  return {
    url,
    dataDir,
    query,
    log: () => stderr,
    async waitFor(promql, accept, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      let last: PromSample[];
      for (;;) {
        last = await query(promql);
        if (accept(last)) return last;
        if (Date.now() > until) {
          throw new PrometheusError('Timeout', `after ${timeoutMs} ms, ${JSON.stringify(promql)} still answers ${JSON.stringify(last)}`);
        }
        await sleep(250);
      }
    },
    stop() {
      stopping ??= terminate(child, exited).finally(() => rmSync(dir, { recursive: true, force: true }));
      return stopping;
    },
  };
}

interface PromResponse {
  status: 'success' | 'error';
  errorType?: string;
  error?: string;
  data?:
    | { resultType: 'vector'; result: { metric: Record<string, string>; value: [number, string] }[] }
    | { resultType: 'scalar' | 'string'; result: [number, string] }
    | { resultType: 'matrix'; result: unknown[] };
}

function toSamples(data: NonNullable<PromResponse['data']>): PromSample[] {
  switch (data.resultType) {
    case 'vector':
      return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    case 'scalar':
    case 'string':
      return [{ metric: {}, value: Number(data.result[1]) }];
    default:
      throw new PrometheusError('QueryFailed', `a range query answer (${data.resultType}) is not supported by query(); use an instant expression`);
  }
}

async function terminate(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killer);
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
