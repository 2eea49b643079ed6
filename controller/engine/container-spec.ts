// Pure translation of a ReplicaSpec into Docker create options: the deterministic container name,
// the ownership labels and the HostConfig derived from spec.template. No I/O here.

import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { ATTEMPT, LABEL_PREFIX, NODE, OWNER_NAME, OWNER_NAMESPACE, OWNER_UID, REPLICA_ID, START_MODE, TEMPLATE_HASH, type StartMode } from '../api/labels.js';
import { EngineError } from './errors.js';
import type { ContainerPort } from '../api/types.js';
import type { ReplicaSpec } from './types.js';

const REPLICA_ID_PATTERN = /^[a-z0-9]{1,12}$/;
const DOCKER_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ENV_NAME_PATTERN = /^[^=\0]+$/;
/** Keep names short enough for `docker ps` and well under any limit; the hash keeps them unique. */
const MAX_NAME_PART = 40;

function invalid(field: string, reason: string): EngineError {
  return new EngineError('InvalidSpec', `${field}: ${reason}`);
}

function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** Lower-case, Docker-name-safe, and bounded; never empty. */
function namePart(text: string): string {
  const cleaned = text
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, MAX_NAME_PART);
  return cleaned.replace(/[.-]+$/, '') || 'x';
}

/**
 * `crs-<namespace>-<name>-<replicaId>-a<attempt>-<hash of owner uid>`: the same spec always gives the
 * same name, two resources never share one (the uid hash), and a retry gets a fresh name (attempt).
 */
export function replicaContainerName(spec: Pick<ReplicaSpec, 'owner' | 'replicaId' | 'attempt'>): string {
  const name = `crs-${namePart(spec.owner.namespace)}-${namePart(spec.owner.name)}-${spec.replicaId}-a${spec.attempt}-${shortHash(spec.owner.uid)}`;
  if (!DOCKER_NAME_PATTERN.test(name)) throw invalid('replicaId', `gives the invalid container name ${JSON.stringify(name)}`);
  return name;
}

function replicaLabels(spec: ReplicaSpec, mode: StartMode): Record<string, string> {
  return {
    ...(spec.template.labels ?? {}),
    [OWNER_UID]: spec.owner.uid,
    [OWNER_NAMESPACE]: spec.owner.namespace,
    [OWNER_NAME]: spec.owner.name,
    [TEMPLATE_HASH]: spec.templateHash,
    [NODE]: spec.node,
    [REPLICA_ID]: spec.replicaId,
    [ATTEMPT]: String(spec.attempt),
    [START_MODE]: mode,
  };
}

const BINARY_SUFFIX: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL_SUFFIX: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** A Kubernetes quantity ("512Mi", "1.5G", "250m", "1e3") as a plain number; undefined when malformed. */
export function parseQuantity(text: string): number | undefined {
  const m = /^([+]?[0-9]+(?:\.[0-9]*)?|[+]?\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$/.exec(text.trim());
  if (!m?.[1]) return undefined;
  const base = Number(m[1]);
  const suffix = m[2] ?? '';
  let factor: number | undefined;
  if (/^[eE]/.test(suffix)) factor = 10 ** Number(suffix.slice(1));
  else factor = BINARY_SUFFIX[suffix] ?? DECIMAL_SUFFIX[suffix];
  if (factor === undefined || !Number.isFinite(base * factor)) return undefined;
  return base * factor;
}

/** Check everything about the spec that needs no I/O; throws InvalidSpec naming the field. */
export function validateReplicaSpec(spec: ReplicaSpec): void {
  if (!spec.owner.uid) throw invalid('owner.uid', 'is empty; ownership is proven by the uid label alone');
  if (!spec.owner.namespace) throw invalid('owner.namespace', 'is empty');
  if (!spec.owner.name) throw invalid('owner.name', 'is empty');
  if (!spec.node) throw invalid('node', 'is empty');
  if (!REPLICA_ID_PATTERN.test(spec.replicaId)) throw invalid('replicaId', `${JSON.stringify(spec.replicaId)} must match [a-z0-9]{1,12}`);
  if (!Number.isInteger(spec.attempt) || spec.attempt < 1) throw invalid('attempt', `${String(spec.attempt)} must be a whole number >= 1`);
  const t = spec.template;
  if (!t.image?.trim()) throw invalid('template.image', 'is empty');
  for (const [key] of Object.entries(t.labels ?? {})) {
    if (key.startsWith(LABEL_PREFIX)) throw invalid(`template.labels[${key}]`, `the prefix ${LABEL_PREFIX} is reserved for the controller's own labels`);
  }
  for (const [i, env] of (t.env ?? []).entries()) {
    if (!ENV_NAME_PATTERN.test(env.name)) throw invalid(`template.env[${i}].name`, `${JSON.stringify(env.name)} is not a valid variable name`);
  }
  const limits = t.resources?.limits;
  if (limits?.memory !== undefined) {
    const bytes = parseQuantity(limits.memory);
    if (bytes === undefined || bytes < 6 * 2 ** 20)
      throw invalid('template.resources.limits.memory', `${JSON.stringify(limits.memory)} must be a quantity of at least 6Mi (Docker's minimum)`);
  }
  if (limits?.cpu !== undefined) {
    const cpus = parseQuantity(limits.cpu);
    if (cpus === undefined || cpus < 0.001) throw invalid('template.resources.limits.cpu', `${JSON.stringify(limits.cpu)} must be a quantity of at least 1m`);
  }
}

export interface CreateOptionsInput {
  spec: ReplicaSpec;
  mode: StartMode;
  /** Network mode for the replica (a restored process expects the network setup of its source). */
  networkMode?: string;
}

/** Docker create options for one replica. Docker never restarts it by itself: only the engine starts replicas. */
export function buildCreateOptions({ spec, mode, networkMode }: CreateOptionsInput): Docker.ContainerCreateOptions {
  validateReplicaSpec(spec);
  const t = spec.template;
  const limits = t.resources?.limits;
  const hostConfig: Docker.HostConfig = { RestartPolicy: { Name: 'no' } };
  if (networkMode) hostConfig.NetworkMode = networkMode;
  if (limits?.memory !== undefined) hostConfig.Memory = Math.floor(parseQuantity(limits.memory) ?? 0);
  if (limits?.cpu !== undefined) hostConfig.NanoCpus = Math.round((parseQuantity(limits.cpu) ?? 0) * 1e9);
  const options: Docker.ContainerCreateOptions = {
    name: replicaContainerName(spec),
    Image: t.image,
    Labels: replicaLabels(spec, mode),
    HostConfig: hostConfig,
  };
  // Kubernetes semantics: command replaces the image's ENTRYPOINT, args replace its CMD.
  if (t.command) options.Entrypoint = t.command;
  if (t.args) options.Cmd = t.args;
  if (t.env) options.Env = t.env.map((e) => `${e.name}=${e.value ?? ''}`);
  if (t.workingDir) options.WorkingDir = t.workingDir;
  if (t.user) options.User = t.user;
  // Kept on the container, so a removal uses the grace of the template the replica was made from.
  if (t.stopGracePeriodSeconds !== undefined) options.StopTimeout = t.stopGracePeriodSeconds;
  if (t.ports?.length) publishPorts(options, hostConfig, t.ports, networkMode);
  return options;
}

/**
 * Each port is published on an EPHEMERAL host port (HostPort ''): Docker picks a free one per
 * container, so any number of replicas of one template coexist on a host without a port plan, and a
 * restore never collides with a port a stopped attempt held. The port is read back from the running
 * container (docker port, the EndpointSlice). Needs a bridge network: the replica inherits the
 * checkpointed container's network, and 'none' or 'host' cannot publish.
 */
function publishPorts(
  options: Docker.ContainerCreateOptions,
  hostConfig: Docker.HostConfig,
  ports: readonly ContainerPort[],
  networkMode: string | undefined,
): void {
  if (networkMode === 'none' || networkMode === 'host' || networkMode?.startsWith('container:'))
    throw invalid(
      'template.ports',
      `cannot be published on network ${JSON.stringify(networkMode ?? 'none')}: checkpoint the source container on a bridge network (docker network create; docs/serving.md)`,
    );
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of ports) {
    const key = `${p.containerPort}/${p.protocol.toLowerCase()}`;
    exposed[key] = {};
    bindings[key] = [{ HostIp: '', HostPort: '' }];
  }
  options.ExposedPorts = exposed;
  hostConfig.PortBindings = bindings;
}
