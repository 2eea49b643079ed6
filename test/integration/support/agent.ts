// Runs the real agent (controller/main.ts) as a child process against the test bed, the way a
// DaemonSet pod would run it, so end-to-end tests can kill it (SIGKILL / SIGTERM) and start it again.
// With CRS_AGENT_COMPILED=1 it runs the shipped artifact exactly as the image does (the Dockerfile's
// ENTRYPOINT and ENV: `node --max-semi-space-size=2 dist/crs-agent.mjs`, the bundle built once by the
// global setup) instead of the TypeScript through tsx.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import type { Testbed } from '../testbed.js';

export interface AgentOptions {
  nodeName: string;
  /** Default: the test bed's admin kubeconfig. */
  kubeconfig?: string;
  namespace?: string;
  maxConcurrentRestores?: number;
  checkpointRoot?: string;
  /** Default: the test bed's containerd tmp (0700). */
  containerdTmp?: string;
  logLevel?: 'debug' | 'info';
  resyncSeconds?: number;
  /** Default: the test bed's engine socket. */
  dockerSocket?: string;
  replicaProvenSeconds?: number;
  /** Extra environment for the process. */
  env?: Record<string, string>;
  /** Compiled only: run the bundle with plain `node`, without the image's node flags and ENV (to measure what they do). */
  plainNode?: boolean;
  /** Extra flags, e.g. ['--max-replicas-per-host=5']. */
  args?: string[];
  /**
   * Secure metrics serving with these PEM files (HTTPS, /metrics only for authorized tokens).
   * Default: --metrics-secure=false, plain HTTP as for local use, which ready() and metrics() speak.
   */
  secureMetrics?: { certFile: string; keyFile: string };
}

export interface RunningAgent {
  readonly metricsUrl: string;
  readonly logFile: string;
  readonly process: ChildProcess;
  /** Resolves once /readyz answers 200. */
  ready(timeoutMs?: number): Promise<void>;
  metrics(): Promise<string>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** True when the tests run the compiled agent (dist/) rather than the sources. */
export function compiledAgent(): boolean {
  return process.env.CRS_AGENT_COMPILED === '1';
}

/**
 * How the image starts the agent, read from the Dockerfile's final stage: node's arguments (the
 * ENTRYPOINT after `node`, paths relative to /app) and the ENV it sets. One source, so the tests
 * and benchmarks run what ships, flags included.
 */
function imageCommand(repoRoot: string): { nodeArgs: string[]; env: Record<string, string> } {
  const text = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
  const final = text.slice(text.lastIndexOf('\nFROM '));
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(final)?.[1];
  const argv = entry ? (JSON.parse(entry) as string[]) : [];
  if (argv[0] !== 'node') throw new Error(`Dockerfile: the final stage's ENTRYPOINT must start with "node", got ${entry ?? 'none'}`);
  const env = Object.fromEntries([...final.matchAll(/^ENV (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  return { nodeArgs: argv.slice(1), env };
}

/** How node starts the agent: one process either way (no tsx wrapper), so signals, RSS and CPU time are the agent's own. */
function agentEntry(repoRoot: string, plainNode = false): { args: string[]; env: Record<string, string> } {
  if (!compiledAgent()) return { args: ['--import', 'tsx', path.join(repoRoot, 'controller/main.ts')], env: {} };
  const image = imageCommand(repoRoot);
  if (plainNode) return { args: [path.join(repoRoot, image.nodeArgs.at(-1) ?? '')], env: {} };
  // The entry's paths are relative to the image's /app, which is the repository root here.
  return { args: image.nodeArgs.map((a) => (a.startsWith('dist/') ? path.join(repoRoot, a) : a)), env: image.env };
}

export async function startAgent(bed: Testbed, options: AgentOptions): Promise<RunningAgent> {
  const port = await freePort();
  const logDir = path.join(bed.repoRoot, '.local/logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `agent-${options.nodeName}-${Date.now()}.log`);
  const entry = agentEntry(bed.repoRoot, options.plainNode);
  const args = [
    ...entry.args,
    '--kubeconfig',
    options.kubeconfig ?? bed.kubeconfig,
    '--node-name',
    options.nodeName,
    '--docker-socket',
    options.dockerSocket ?? bed.dockerSocket,
    '--docker-root',
    bed.dockerRoot,
    '--containerd-tmp',
    options.containerdTmp ?? bed.containerdTmp,
    '--metrics-address',
    `127.0.0.1:${port}`,
    '--max-concurrent-restores',
    String(options.maxConcurrentRestores ?? 10),
    '--log-level',
    options.logLevel ?? 'debug',
    '--resync-seconds',
    String(options.resyncSeconds ?? 30),
  ];
  if (options.secureMetrics)
    args.push('--metrics-secure', 'true', '--metrics-cert-file', options.secureMetrics.certFile, '--metrics-key-file', options.secureMetrics.keyFile);
  else args.push('--metrics-secure', 'false');
  if (options.namespace) args.push('--namespace', options.namespace);
  args.push(...(options.args ?? []));
  if (options.replicaProvenSeconds !== undefined) args.push('--replica-proven-seconds', String(options.replicaProvenSeconds));
  if (options.checkpointRoot) args.push('--checkpoint-root', options.checkpointRoot);
  const child = spawn(process.execPath, args, {
    cwd: bed.repoRoot,
    env: { ...process.env, ...entry.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(logFile, { flags: 'a' });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const metricsUrl = `${options.secureMetrics ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    metricsUrl,
    logFile,
    process: child,
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode} before ready; see ${logFile}`);
        const ok = await fetch(`${metricsUrl}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`agent not ready within ${timeoutMs} ms; see ${logFile}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async metrics() {
      const res = await fetch(`${metricsUrl}/metrics`);
      return res.text();
    },
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      log.end();
      return code;
    },
  };
}

/** The value of one sample line `name{labels} value` in a Prometheus text exposition. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}

/**
 * A kubeconfig that acts as the agent's ServiceAccount from manifests/ (its ClusterRole and binding
 * applied for real), so a test proves the shipped RBAC is enough for everything the agent does.
 */
export async function serviceAccountKubeconfig(bed: Testbed, run: (...args: string[]) => Promise<string>): Promise<string> {
  for (const file of ['namespace.yaml', 'serviceaccount.yaml', 'clusterrole.yaml', 'clusterrolebinding.yaml']) {
    await run('apply', '--server-side', '--force-conflicts', '-f', path.join(bed.repoRoot, 'manifests', file));
  }
  const token = (await run('create', 'token', 'crs-controller', '-n', 'crs-system', '--duration=2h')).trim();
  const server = (await run('config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}')).trim();
  const ca = (await run('config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.certificate-authority}')).trim();
  const file = path.join(bed.repoRoot, '.local', `agent-sa-${Date.now()}.kubeconfig`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test-bed', cluster: { server, 'certificate-authority': ca } }],
      users: [{ name: 'crs-controller', user: { token } }],
      contexts: [{ name: 'agent', context: { cluster: 'test-bed', user: 'crs-controller' } }],
      'current-context': 'agent',
    }),
    { mode: 0o600 },
  );
  return file;
}
