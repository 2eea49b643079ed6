// The sample workload (hack/workload) as a checkpoint source for end-to-end tests: a running
// container that counted a little, checkpointed under a name, allowed into the given namespaces.
import Docker from 'dockerode';
import { OWNER_NAMESPACE, RESTORE_INTO_NAMESPACES } from '../../../controller/api/labels.js';
import type { Testbed } from '../testbed.js';

export interface SourceOptions {
  containerName: string;
  checkpointName: string;
  /** Namespaces that may restore it ('*' for all). */
  allowNamespaces: string;
  memoryMb?: number;
  /** Serve HTTP on this container port (APP_HTTP_PORT), quiesced before the checkpoint (docs/serving.md). */
  httpPort?: number;
  /** A bridge network to run on (default none); a served replica needs one to publish ports. */
  network?: string;
}

export function dockerClient(bed: Testbed): Docker {
  return new Docker({ socketPath: bed.dockerSocket });
}

export interface SampleResourceOptions {
  namespace: string;
  name: string;
  replicas: number;
  /** The source container (see checkpointedSource) and its checkpoint 'warm'. */
  source: string;
  maxAttempts?: number;
  nodeSelector?: Record<string, string>;
}

/** A CheckpointReplicaSet of the sample workload restored from `source`'s checkpoint 'warm', as JSON for kubectl apply. */
export function sampleResource(bed: Testbed, o: SampleResourceOptions): string {
  return JSON.stringify({
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      replicas: o.replicas,
      checkpoint: { container: o.source, name: 'warm' },
      template: { image: bed.sampleImage, env: [{ name: 'APP_MEMORY_MB', value: '16' }] },
      restore: { maxConcurrent: 10, timeoutSeconds: 60, maxAttempts: o.maxAttempts ?? 5 },
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
    },
  });
}

/** Creates (replacing any of that name) and checkpoints a source container; returns its id. */
export async function checkpointedSource(bed: Testbed, options: SourceOptions): Promise<string> {
  const docker = dockerClient(bed);
  await docker
    .getContainer(options.containerName)
    .remove({ force: true })
    .catch(() => undefined);
  const source = await docker.createContainer({
    name: options.containerName,
    Image: bed.sampleImage,
    Env: [`APP_MEMORY_MB=${options.memoryMb ?? 16}`, `APP_HTTP_PORT=${options.httpPort ?? 0}`],
    Labels: { [RESTORE_INTO_NAMESPACES]: options.allowNamespaces },
    HostConfig: { NetworkMode: options.network ?? 'none' },
  });
  await source.start();
  const deadline = Date.now() + 30_000;
  while (!/counter 2\b/.test((await source.logs({ stdout: true, stderr: true })).toString())) {
    if (Date.now() > deadline) throw new Error(`source ${options.containerName} did not start counting in 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  if (options.httpPort) await quiesce(source);
  await checkpointContainer(source, options.checkpointName);
  return source.id;
}

/** SIGUSR1: the sample server closes its listener (CRIU 4.1 cannot dump TCP sockets on Linux >= 6.16). */
async function quiesce(source: Docker.Container): Promise<void> {
  await source.kill({ signal: 'SIGUSR1' });
  const deadline = Date.now() + 10_000;
  while (!/\bquiesced\b/.test((await source.logs({ stdout: true, stderr: true })).toString())) {
    if (Date.now() > deadline) throw new Error('the source did not quiesce (close its listener) within 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `docker checkpoint create --leave-running=false`. @types/dockerode 4 does not declare
 * createCheckpoint (dockerode has it); the API defaults to leaving the container running, hence Exit.
 */
export async function checkpointContainer(container: Docker.Container, checkpointName: string): Promise<void> {
  const withCheckpoint = container as Docker.Container & {
    createCheckpoint(options: { CheckpointID: string; Exit: boolean }): Promise<unknown>;
  };
  await withCheckpoint.createCheckpoint({ CheckpointID: checkpointName, Exit: true });
}

export interface ContainerSummary {
  id: string;
  name: string;
  state: string;
  created: number;
  labels: Record<string, string>;
}

/** Containers on the engine carrying label key=value (all states). */
export async function containersWithLabel(bed: Testbed, key: string, value?: string): Promise<ContainerSummary[]> {
  const list = await dockerClient(bed).listContainers({
    all: true,
    filters: { label: [value === undefined ? key : `${key}=${value}`] },
  });
  return list.map((c) => ({
    id: c.Id,
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    state: c.State,
    created: c.Created,
    labels: c.Labels,
  }));
}

/**
 * After a test: force-removes the engine's replicas of every resource in `namespace` (by the agent's
 * owner-namespace label) and the named source containers. Best effort: what is already gone is fine.
 */
export async function removeTestContainers(bed: Testbed, namespace: string, names: string[] = []): Promise<void> {
  const docker = dockerClient(bed);
  const replicas = await containersWithLabel(bed, OWNER_NAMESPACE, namespace);
  for (const ref of [...replicas.map((c) => c.id), ...names]) {
    await docker
      .getContainer(ref)
      .remove({ force: true })
      .catch(() => undefined);
  }
}

export interface DockerEvent {
  Action: string;
  id: string;
  timeNano: number;
  Actor: { ID: string; Attributes: Record<string, string> };
}

/** Follows Docker's event stream with these filters, one parsed event at a time; stop() ends it. */
export async function followEvents(bed: Testbed, filters: Record<string, string[]>, onEvent: (event: DockerEvent) => void): Promise<{ stop: () => void }> {
  const stream = (await dockerClient(bed).getEvents({ filters })) as NodeJS.ReadableStream & { destroy(): void };
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.trim()) onEvent(JSON.parse(line) as DockerEvent);
    }
  });
  return { stop: () => stream.destroy() };
}

/**
 * Watches Docker's event stream and keeps the highest number of containers of one owner that were
 * created but not yet started or gone at the same moment: an upper bound, observed independently of
 * the agent, on the restores it had in flight (it creates a replica only once it holds a restore slot).
 */
export async function watchInFlight(bed: Testbed, ownerUidLabel: string, ownerUid: string): Promise<{ peak(): number; stop(): void }> {
  const pending = new Set<string>();
  let peak = 0;
  const follow = await followEvents(bed, { type: ['container'], label: [`${ownerUidLabel}=${ownerUid}`] }, (event) => {
    if (event.Action === 'create') pending.add(event.id);
    if (event.Action === 'start' || event.Action === 'destroy' || event.Action === 'die') pending.delete(event.id);
    peak = Math.max(peak, pending.size);
  });
  return { peak: () => peak, stop: follow.stop };
}
