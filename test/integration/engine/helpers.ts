// Shared set-up for the engine's integration tests: the real Docker engine with CRIU from the test
// bed, a small checkpointed source container per test file, and clean-up that touches only what
// the test made (by its own owner uid label or its own container names).
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { OWNER_UID, RESTORE_INTO_NAMESPACES } from '../../../controller/api/labels.js';
import { createDockerEngine, type DockerEngine, type DockerEngineOptions } from '../../../controller/engine/docker-engine.js';
import { findMarkedCopies } from '../../../controller/engine/hygiene.js';
import type { EngineEvent, ReplicaSpec } from '../../../controller/engine/types.js';
import type { Testbed } from '../testbed.js';

export const NODE = 'engine-it-node';

export function docker(bed: Testbed): Docker {
  return new Docker({ socketPath: bed.dockerSocket });
}

export function engineOptions(bed: Testbed, over: Partial<DockerEngineOptions> = {}): DockerEngineOptions {
  return {
    dockerSocket: bed.dockerSocket,
    dockerRoot: bed.dockerRoot,
    containerdTmp: bed.containerdTmp,
    node: NODE,
    // The sample app runs as PID 1 without a SIGTERM handler: a long grace period only slows tests.
    stopTimeoutSeconds: 1,
    // Tests use small checkpoints; keep the reserve small so a busy shared disk does not stall them.
    diskReserveBytes: 256 * 2 ** 20,
    ...over,
  };
}

export async function newEngine(bed: Testbed, over: Partial<DockerEngineOptions> = {}): Promise<DockerEngine> {
  return createDockerEngine(engineOptions(bed, over));
}

export interface Source {
  id: string;
  name: string;
  checkpoint: string;
  imageId: string;
  /** The last counter the source printed before its checkpoint. */
  lastCounter: number;
  /** Docker's own folder of the checkpoint. */
  dir: string;
}

export function counters(logs: string): number[] {
  return [...logs.matchAll(/^counter (\d+)$/gm)].map((m) => Number(m[1]));
}

export async function logsOf(d: Docker, id: string): Promise<string> {
  return (await d.getContainer(id).logs({ stdout: true, stderr: true })).toString('latin1');
}

/** A source container of the sample workload, counted to >= 2 and checkpointed (it exits). */
export async function makeSource(bed: Testbed, name: string, allowNamespaces: string | undefined, memoryMb = 16, image = bed.sampleImage): Promise<Source> {
  const d = docker(bed);
  await d
    .getContainer(name)
    .remove({ force: true })
    .catch(() => undefined);
  const c = await d.createContainer({
    name,
    Image: image,
    Env: [`APP_MEMORY_MB=${memoryMb}`],
    Labels: allowNamespaces === undefined ? {} : { [RESTORE_INTO_NAMESPACES]: allowNamespaces },
    HostConfig: { NetworkMode: 'none' },
  });
  await c.start();
  for (let i = 0; ; i++) {
    if (counters(await logsOf(d, c.id)).some((n) => n >= 2)) break;
    if (i > 300) throw new Error(`source ${name} did not count to 2 within 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const checkpoint = 'warm';
  // @types/dockerode lacks createCheckpoint (dockerode has it). Exit: true stops the source, as the CLI does.
  await (c as Docker.Container & { createCheckpoint(o: { CheckpointID: string; Exit: boolean }): Promise<unknown> }).createCheckpoint({
    CheckpointID: checkpoint,
    Exit: true,
  });
  const info = await c.inspect();
  const seen = counters(await logsOf(d, c.id));
  return {
    id: c.id,
    name,
    checkpoint,
    imageId: info.Image,
    lastCounter: Math.max(...seen),
    dir: path.join(bed.dockerRoot, 'containers', c.id, 'checkpoints', checkpoint),
  };
}

export function uid(): string {
  return randomUUID();
}

export function specFor(
  source: Source,
  owner: { uid: string; namespace: string; name: string },
  replicaId: string,
  over: Partial<ReplicaSpec> = {},
): ReplicaSpec {
  return {
    owner,
    node: NODE,
    replicaId,
    attempt: 1,
    templateHash: 'it-hash',
    template: { image: source.imageId, env: [{ name: 'APP_MEMORY_MB', value: '16' }] },
    checkpoint: { container: source.name, name: source.checkpoint },
    ...over,
  };
}

/** Containers carrying this owner uid (whatever the engine thinks). */
export async function containersOf(bed: Testbed, ownerUid: string): Promise<Docker.ContainerInfo[]> {
  return docker(bed).listContainers({ all: true, filters: { label: [`${OWNER_UID}=${ownerUid}`] } });
}

/** Leaked ctrd-checkpoint copies whose marker names one of these containers. */
export async function markedCopiesOf(bed: Testbed, containerIds: Iterable<string>): Promise<string[]> {
  const ids = new Set(containerIds);
  return (await findMarkedCopies(bed.containerdTmp)).filter((c) => ids.has(c.containerId)).map((c) => c.dir);
}

/** Leaked ctrd-checkpoint copies whose marker names a replica of this owner uid. */
export async function markedCopiesOfOwner(bed: Testbed, ownerUid: string): Promise<string[]> {
  return (await findMarkedCopies(bed.containerdTmp)).filter((c) => c.marker?.ownerUid === ownerUid).map((c) => c.dir);
}

/** Test clean-up: force-remove the containers of this owner uid and their leaked copies. */
export async function removeOwner(bed: Testbed, ownerUid: string): Promise<void> {
  const d = docker(bed);
  const list = await containersOf(bed, ownerUid);
  for (const c of list)
    await d
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => undefined);
  for (const dir of await markedCopiesOfOwner(bed, ownerUid)) await fs.rm(dir, { recursive: true, force: true });
}

export function record(engine: DockerEngine): EngineEvent[] {
  const events: EngineEvent[] = [];
  engine.onEvent((e) => events.push(e));
  return events;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
