// Child process of crash.test.ts: runs ONE restore through the real engine and stops it between
// Docker's answer to the start and the removal of the replica's checkpoint copy, then waits there
// for the test's SIGKILL. Input: JSON in CRS_CRASH_INPUT ({ options, spec }).
import { createDockerEngine, type DockerEngineOptions } from '../../../controller/engine/docker-engine.js';
import type { ReplicaSpec } from '../../../controller/engine/types.js';

const input = JSON.parse(process.env['CRS_CRASH_INPUT'] ?? '{}') as { options: DockerEngineOptions; spec: ReplicaSpec };
const engine = await createDockerEngine({
  ...input.options,
  sweepOnStart: false,
  afterRestoreStart: (containerId) => {
    process.stdout.write(`paused ${containerId}\n`);
    setInterval(() => undefined, 60_000); // keep the process alive until it is killed
    return new Promise<void>(() => undefined);
  },
});
await engine.restoreReplica(input.spec, { timeoutMs: 120_000 });
