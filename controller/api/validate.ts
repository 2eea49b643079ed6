// Checks an agent makes on a spec before acting, beyond what the CRD schema can check at apply time:
//   - the ones that depend on the agent's own host (checkpoint root, CPU count, Docker's limits);
//   - the safety invariants again (one checkpoint source, no path escape, no reserved labels, at most
//     10 restores at once), because the agent must not trust that the CRD installed in the cluster is
//     this version's: an older or hand-edited CRD would let such a spec through.
// Pure: the caller supplies the host facts. Plus templateHash(), the Docker label that tells an
// up-to-date replica from an outdated one.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { LABEL_PREFIX } from './labels.js';
import { QuantityError, memoryBytes, nanoCpus } from './quantity.js';
import { MAX_CONCURRENT_RESTORES } from './schema.js';
import type { CheckpointReplicaSetSpec } from './types.js';
import { canonicalJson } from '../vocabulary.js';

type SpecProblemCode = 'Required' | 'Invalid' | 'Forbidden' | 'OutOfRange';

/** One thing wrong with a spec: which field, a code a program can branch on, words a person can act on. */
export interface SpecProblem {
  /** e.g. "spec.template.resources.limits.memory" */
  field: string;
  code: SpecProblemCode;
  message: string;
}

/** Facts about the agent's host that the apiserver cannot know. */
export interface AgentLimits {
  /**
   * Absolute host directory that `spec.checkpoint.path` must lie under (--checkpoint-root). Without
   * one, path sources are refused: an agent must not restore from anywhere on the host.
   */
  checkpointRoot?: string;
  /** CPUs on the host; Docker refuses a CPU limit above it. */
  hostCpus?: number;
  /** The node's operator requires a memory limit in every template (--require-memory-limit). */
  requireMemoryLimit?: boolean;
}

/** Docker refuses a memory limit under 6 MiB ("Minimum memory limit allowed is 6MB"). */
const DOCKER_MIN_MEMORY_BYTES = 6 * 1024 * 1024;
/** Docker's smallest CPU limit is 0.01 CPU. */
const DOCKER_MIN_NANO_CPUS = 10_000_000;

export class InvalidSpecError extends Error {
  readonly code = 'InvalidSpec';
  constructor(readonly problems: readonly SpecProblem[]) {
    super(`invalid spec: ${formatSpecProblems(problems)}`);
  }
}

function formatSpecProblems(problems: readonly SpecProblem[]): string {
  return problems.map((p) => `${p.field}: ${p.message}`).join('; ');
}

/** Every problem found (empty when the spec is fine for this agent). */
export function validateSpec(spec: CheckpointReplicaSetSpec, agent: AgentLimits = {}): SpecProblem[] {
  return [...checkCheckpointSource(spec, agent), ...checkTemplate(spec, agent), ...checkRestorePolicy(spec)];
}

/** Throws InvalidSpecError when validateSpec finds anything. */
export function assertValidSpec(spec: CheckpointReplicaSetSpec, agent: AgentLimits = {}): void {
  const problems = validateSpec(spec, agent);
  if (problems.length > 0) throw new InvalidSpecError(problems);
}

function checkCheckpointSource(spec: CheckpointReplicaSetSpec, agent: AgentLimits): SpecProblem[] {
  const { container, name, path: source, bootstrap } = spec.checkpoint ?? {};
  const hasContainer = container !== undefined && container !== '';
  const hasPath = source !== undefined && source !== '';
  if (bootstrap !== undefined) {
    return hasContainer || hasPath || (name !== undefined && name !== '')
      ? [problem('spec.checkpoint.bootstrap', 'Forbidden', 'excludes container, name and path: name exactly one source')]
      : [];
  }
  if (hasContainer && hasPath) {
    return [problem('spec.checkpoint', 'Forbidden', 'name exactly one source: either container and name, or path, not both')];
  }
  if (!hasContainer && !hasPath) {
    return [problem('spec.checkpoint', 'Required', 'name a source: container and name, path, or bootstrap')];
  }
  if (hasContainer) {
    return name === undefined || name === '' ? [problem('spec.checkpoint.name', 'Required', 'the checkpoint to restore from the container must be named')] : [];
  }
  return checkCheckpointPath(source ?? '', agent.checkpointRoot);
}

function checkCheckpointPath(source: string, checkpointRoot: string | undefined): SpecProblem[] {
  const field = 'spec.checkpoint.path';
  if (!path.posix.isAbsolute(source)) return [problem(field, 'Invalid', 'must be an absolute path (start with /)')];
  if (source.split('/').includes('..')) return [problem(field, 'Invalid', "must not contain '..' segments")];
  if (checkpointRoot === undefined || checkpointRoot === '') {
    return [problem(field, 'Forbidden', 'this agent has no checkpoint root (--checkpoint-root), so it restores only from containers')];
  }
  const root = path.posix.resolve(checkpointRoot);
  const relative = path.posix.relative(root, path.posix.resolve(source));
  if (relative === '' || relative.startsWith('..') || path.posix.isAbsolute(relative)) {
    return [problem(field, 'Forbidden', `must be a directory below this agent's checkpoint root ${root}`)];
  }
  return [];
}

function checkTemplate(spec: CheckpointReplicaSetSpec, agent: AgentLimits): SpecProblem[] {
  const template = spec.template;
  if (template === undefined) return [problem('spec.template', 'Required', 'the container to create is required')];
  const problems: SpecProblem[] = [];
  if (template.image === undefined || template.image.trim() === '') {
    problems.push(problem('spec.template.image', 'Required', 'must be a non-empty image reference'));
  }
  for (const key of Object.keys(template.labels ?? {})) {
    if (key.startsWith(LABEL_PREFIX)) {
      problems.push(
        problem(
          `spec.template.labels[${key}]`,
          'Forbidden',
          `the prefix ${LABEL_PREFIX} is the controller's own: it marks which containers the controller owns`,
        ),
      );
    }
  }
  const limits = template.resources?.limits;
  if (limits?.memory !== undefined) problems.push(...checkMemory(limits.memory));
  else if (agent.requireMemoryLimit)
    problems.push(
      problem('spec.template.resources.limits.memory', 'Required', "this node's operator requires a memory limit in every template (--require-memory-limit)"),
    );
  if (limits?.cpu !== undefined) problems.push(...checkCpu(limits.cpu, agent.hostCpus));
  return problems;
}

function checkMemory(text: string): SpecProblem[] {
  const field = 'spec.template.resources.limits.memory';
  const bytes = parsed(() => memoryBytes(text));
  if (typeof bytes === 'string') return [problem(field, 'Invalid', bytes)];
  if (bytes < DOCKER_MIN_MEMORY_BYTES) {
    return [problem(field, 'OutOfRange', `${text} is below Docker's minimum memory limit of 6Mi`)];
  }
  return [];
}

function checkCpu(text: string, hostCpus: number | undefined): SpecProblem[] {
  const field = 'spec.template.resources.limits.cpu';
  const nanos = parsed(() => nanoCpus(text));
  if (typeof nanos === 'string') return [problem(field, 'Invalid', nanos)];
  if (nanos < DOCKER_MIN_NANO_CPUS) {
    return [problem(field, 'OutOfRange', `${text} is below Docker's minimum CPU limit of 10m (0.01 CPU)`)];
  }
  if (hostCpus !== undefined && nanos > hostCpus * 1_000_000_000) {
    return [problem(field, 'OutOfRange', `${text} is more than the ${hostCpus} CPUs this node has`)];
  }
  return [];
}

function checkRestorePolicy(spec: CheckpointReplicaSetSpec): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const { maxConcurrent, timeoutSeconds, maxAttempts } = spec.restore ?? {};
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1 || maxConcurrent > MAX_CONCURRENT_RESTORES) {
    problems.push(problem('spec.restore.maxConcurrent', 'OutOfRange', `must be an integer from 1 to ${MAX_CONCURRENT_RESTORES}`));
  }
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) {
    problems.push(problem('spec.restore.timeoutSeconds', 'OutOfRange', 'must be a whole number of seconds, at least 1'));
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    problems.push(problem('spec.restore.maxAttempts', 'OutOfRange', 'must be an integer, at least 1'));
  }
  if (!Number.isInteger(spec.replicas) || spec.replicas < 0) {
    problems.push(problem('spec.replicas', 'OutOfRange', 'must be an integer, 0 or more'));
  }
  return problems;
}

function parsed(parse: () => number): number | string {
  try {
    return parse();
  } catch (error) {
    if (error instanceof QuantityError) return error.message;
    throw error;
  }
}

function problem(field: string, code: SpecProblemCode, message: string): SpecProblem {
  return { field, code, message };
}

// ---- template hash ---------------------------------------------------------------------------

/** Length of templateHash's result: 10 hex characters, 40 bits, ample for telling generations apart. */
const TEMPLATE_HASH_LENGTH = 10;

/**
 * A stable short hash of what a replica is made from (spec.template + spec.checkpoint), for the
 * TEMPLATE_HASH Docker label: a replica whose label differs is out of date. replicas, restore policy,
 * nodeSelector and paused do not change what a replica is, so they are not part of it.
 */
export function templateHash(spec: Pick<CheckpointReplicaSetSpec, 'template' | 'checkpoint'>): string {
  const input = canonicalJson({ checkpoint: spec.checkpoint, template: spec.template });
  return createHash('sha256').update(input).digest('hex').slice(0, TEMPLATE_HASH_LENGTH);
}
