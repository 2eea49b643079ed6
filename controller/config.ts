// The agent's configuration: command-line flags, each with an environment variable fallback.
// Parsing is pure so it is unit-tested; bad input names the flag and the reason.
import { isIP } from 'node:net';
import { LOG_LEVELS, type LogLevel } from './log.js';

export interface AgentConfig {
  /** Path of a kubeconfig; undefined means in-cluster (the ServiceAccount), else $KUBECONFIG. */
  kubeconfig: string | undefined;
  nodeName: string;
  dockerSocket: string;
  dockerRoot: string;
  /** Host folder under which `spec.checkpoint.path` sources may live. */
  checkpointRoot: string;
  /** containerd's XDG_RUNTIME_DIR, where it leaks ctrd-checkpoint* copies (host hygiene). */
  containerdTmp: string;
  maxConcurrentRestores: number;
  /** Watch one namespace only; undefined = all namespaces. */
  namespace: string | undefined;
  metricsHost: string;
  metricsPort: number;
  logLevel: LogLevel;
  /** Re-reconcile everything this often even without changes. */
  resyncSeconds: number;
  workers: number;
  // Host protection set by the node's operator (issue 9), not by tenants.
  /** Most replica containers of all resources on this host; 0 = no cap. */
  maxReplicasPerHost: number;
  /** Refuse templates without resources.limits.memory. */
  requireMemoryLimit: boolean;
  // The metrics endpoint (issue 9).
  /** HTTPS, and /metrics only for tokens the apiserver authorizes; false: plain HTTP for local use. */
  metricsSecure: boolean;
  /** PEM files of the serving certificate (e.g. from a Secret); unset: self-signed at start. */
  metricsCertFile: string | undefined;
  metricsKeyFile: string | undefined;
  /** Deadline of each Docker call (and of the clean-up after a failed restore). */
  dockerTimeoutSeconds: number;
  /** /healthz fails after this long with work pending and no progress (see health.ts). */
  wedgedAfterSeconds: number;
  /** A replica that ran this long clears its slot's failure count when it dies. */
  replicaProvenSeconds: number;
  // Serving (issue 15).
  /** The node's address in EndpointSlices (where replicas' host ports are reached); undefined: the first non-loopback IPv4. */
  nodeAddress?: string | undefined;
  /** A node whose Node object is missing this long loses its status entry and finalizer (issue 12). */
  departedNodeGraceSeconds: number;
}

export class ConfigError extends Error {
  readonly code = 'InvalidConfig';
  constructor(
    readonly flag: string,
    reason: string,
  ) {
    super(`--${flag}: ${reason}`);
    this.name = 'ConfigError';
  }
}

interface FlagSpec {
  env: string;
  help: string;
  default?: string;
}

const FLAGS: Record<string, FlagSpec> = {
  kubeconfig: { env: 'KUBECONFIG', help: 'kubeconfig file; in-cluster ServiceAccount when unset' },
  'node-name': { env: 'NODE_NAME', help: 'name of the Node this agent serves (required)' },
  'docker-socket': { env: 'DOCKER_SOCKET', help: 'Docker engine socket', default: '/var/run/docker.sock' },
  'docker-root': { env: 'DOCKER_ROOT', help: "Docker's --data-root on the host", default: '/var/lib/docker' },
  'checkpoint-root': {
    env: 'CHECKPOINT_ROOT',
    help: 'host folder under which spec.checkpoint.path may point',
    default: '/var/lib/crs-checkpoints',
  },
  'containerd-tmp': {
    env: 'CONTAINERD_TMP',
    help: "containerd's XDG_RUNTIME_DIR (where it leaks ctrd-checkpoint copies)",
    default: '/tmp',
  },
  'max-concurrent-restores': { env: 'MAX_CONCURRENT_RESTORES', help: 'restores in flight per host, 1..10', default: '10' },
  namespace: { env: 'WATCH_NAMESPACE', help: 'watch only this namespace (default: all)' },
  'metrics-address': { env: 'METRICS_ADDRESS', help: 'host:port for /metrics, /healthz, /readyz', default: ':9464' },
  'log-level': { env: 'LOG_LEVEL', help: `one of ${LOG_LEVELS.join(', ')}`, default: 'info' },
  'resync-seconds': { env: 'RESYNC_SECONDS', help: 'full resync period', default: '300' },
  workers: { env: 'WORKERS', help: 'resources reconciled at once', default: '4' },
  // Host protection set by the node's operator (issue 9).
  'max-replicas-per-host': {
    env: 'MAX_REPLICAS_PER_HOST',
    help: 'most replica containers of all resources on this host; beyond it a resource is Degraded (QuotaExceeded) and keeps what runs; 0 = no cap',
    default: '500',
  },
  'require-memory-limit': {
    env: 'REQUIRE_MEMORY_LIMIT',
    help: 'true: refuse templates without resources.limits.memory',
    default: 'false',
  },
  // The metrics endpoint (issue 9).
  'metrics-secure': {
    env: 'METRICS_SECURE',
    help: 'true: HTTPS, /metrics only for bearer tokens allowed to get the non-resource URL /metrics (TokenReview + SubjectAccessReview); false: plain HTTP, open (local use)',
    default: 'true',
  },
  'metrics-cert-file': { env: 'METRICS_CERT_FILE', help: 'PEM certificate for the metrics endpoint (default: self-signed at start)' },
  'metrics-key-file': { env: 'METRICS_KEY_FILE', help: 'PEM private key of --metrics-cert-file' },
  'docker-timeout-seconds': {
    env: 'DOCKER_TIMEOUT_SECONDS',
    help: 'deadline of each Docker call and of the clean-up after a failed restore (a restore start is bounded by spec.restore.timeoutSeconds)',
    default: '30',
  },
  'wedged-after-seconds': {
    env: 'WEDGED_AFTER_SECONDS',
    help: '/healthz fails when work is pending and neither Docker answered nor a reconcile progressed for this long',
    default: '120',
  },
  'replica-proven-seconds': {
    env: 'REPLICA_PROVEN_SECONDS',
    help: "a replica that ran this long is forgiven its slot's failed restores",
    default: '60',
  },
  // Serving (issue 15).
  'node-address': {
    env: 'NODE_IP',
    help: "this node's address in the EndpointSlices of served replicas (e.g. the downward API status.hostIP); default: the first non-loopback IPv4",
  },
  'departed-node-grace-seconds': {
    env: 'DEPARTED_NODE_GRACE_SECONDS',
    help: 'a node whose Node object has been missing this long has its status.nodes entry and finalizer removed by the remaining agents (it left for good)',
    default: '60',
  },
};

export function usage(): string {
  const lines = Object.entries(FLAGS).map(
    ([flag, spec]) => `  --${flag.padEnd(24)} ${spec.help} [env ${spec.env}]${spec.default !== undefined ? ` (default ${spec.default})` : ''}`,
  );
  return `Usage: crs-controller [flags]\n\nFlags:\n${lines.join('\n')}\n  --help                    this text\n`;
}

/** Parses argv (without node and script) and env into a validated config. Throws ConfigError. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): AgentConfig {
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m?.[1]) throw new ConfigError(arg.replace(/^-+/, ''), `unexpected argument "${arg}" (see --help)`);
    const flag = m[1];
    if (!(flag in FLAGS)) throw new ConfigError(flag, 'unknown flag (see --help)');
    let value = m[2];
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new ConfigError(flag, 'needs a value');
    }
    given.set(flag, value);
  }
  const get = (flag: string): string | undefined => {
    const spec = FLAGS[flag];
    if (!spec) throw new Error(`no such flag ${flag}`);
    const fromEnv = env[spec.env];
    return given.get(flag) ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : spec.default);
  };

  const nodeName = get('node-name');
  if (!nodeName) throw new ConfigError('node-name', 'is required (or set NODE_NAME, e.g. from the downward API spec.nodeName)');
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(nodeName)) {
    throw new ConfigError('node-name', `"${nodeName}" is not a valid Kubernetes node name (lower-case DNS subdomain)`);
  }
  const maxConcurrentRestores = integer('max-concurrent-restores', get('max-concurrent-restores'), 1, 10);
  const logLevel = get('log-level') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('log-level', `"${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  const { host: metricsHost, port: metricsPort } = hostPort('metrics-address', get('metrics-address') ?? ':9464');
  for (const flag of ['docker-socket', 'docker-root', 'checkpoint-root', 'containerd-tmp']) {
    const value = get(flag) ?? '';
    if (!value.startsWith('/')) throw new ConfigError(flag, `"${value}" must be an absolute path`);
  }
  return {
    kubeconfig: get('kubeconfig') || undefined,
    nodeName,
    dockerSocket: get('docker-socket') as string,
    dockerRoot: get('docker-root') as string,
    checkpointRoot: get('checkpoint-root') as string,
    containerdTmp: get('containerd-tmp') as string,
    maxConcurrentRestores,
    namespace: get('namespace') || undefined,
    metricsHost,
    metricsPort,
    logLevel,
    resyncSeconds: integer('resync-seconds', get('resync-seconds'), 10, 86_400),
    workers: integer('workers', get('workers'), 1, 64),
    maxReplicasPerHost: integer('max-replicas-per-host', get('max-replicas-per-host'), 0, 100_000),
    requireMemoryLimit: boolean('require-memory-limit', get('require-memory-limit')),
    ...metricsServing(get),
    dockerTimeoutSeconds: integer('docker-timeout-seconds', get('docker-timeout-seconds'), 1, 600),
    wedgedAfterSeconds: integer('wedged-after-seconds', get('wedged-after-seconds'), 5, 3600),
    replicaProvenSeconds: integer('replica-proven-seconds', get('replica-proven-seconds'), 1, 86_400),
    nodeAddress: address('node-address', get('node-address')),
    departedNodeGraceSeconds: integer('departed-node-grace-seconds', get('departed-node-grace-seconds'), 1, 86_400),
  };
}

function integer(flag: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (raw === undefined || !/^\d+$/.test(raw) || n < min || n > max) {
    throw new ConfigError(flag, `"${raw ?? ''}" must be a whole number from ${min} to ${max}`);
  }
  return n;
}

function metricsServing(get: (flag: string) => string | undefined): Pick<AgentConfig, 'metricsSecure' | 'metricsCertFile' | 'metricsKeyFile'> {
  const metricsSecure = boolean('metrics-secure', get('metrics-secure'));
  const metricsCertFile = get('metrics-cert-file') || undefined;
  const metricsKeyFile = get('metrics-key-file') || undefined;
  if ((metricsCertFile === undefined) !== (metricsKeyFile === undefined))
    throw new ConfigError(
      metricsCertFile ? 'metrics-key-file' : 'metrics-cert-file',
      'is required with the other one: give both the certificate and its key, or neither (self-signed)',
    );
  if (!metricsSecure && metricsCertFile) throw new ConfigError('metrics-cert-file', 'is for --metrics-secure=true; plain HTTP has no certificate');
  return { metricsSecure, metricsCertFile, metricsKeyFile };
}

function boolean(flag: string, raw: string | undefined): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new ConfigError(flag, `"${raw ?? ''}" must be true or false`);
}

function hostPort(flag: string, raw: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]*):(\d{1,5})$/.exec(raw);
  const port = Number(m?.[2]);
  if (!m || port > 65_535) throw new ConfigError(flag, `"${raw}" must be host:port or :port, e.g. :9464 or 127.0.0.1:9464`);
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, '') || '0.0.0.0', port };
}

/** An IPv4 or IPv6 literal (an EndpointSlice address), or undefined when not given. */
function address(flag: string, raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (isIP(raw) === 0) throw new ConfigError(flag, `"${raw}" must be an IPv4 or IPv6 address`);
  if (/^127\.|^::1$/.test(raw)) throw new ConfigError(flag, `"${raw}" is a loopback address, which EndpointSlices refuse: give the node's own address`);
  return raw;
}
