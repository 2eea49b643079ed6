// The soak runs shared by the soak test (in `npm test`, bounded) and the soak benchmark (the full
// 1000 cycles, hack/bench/soak.ts): restore/remove cycles through the real engine module, measured
// for what a slow leak would show: heap after GC, open handles, warnings, files left on disk.
import fs from 'node:fs/promises';
import path from 'node:path';
import { REPLICA_CHECKPOINT_NAME } from '../../../controller/engine/checkpoint-placement.js';
import type { DockerEngine } from '../../../controller/engine/docker-engine.js';
import { heapAfterGc } from '../../heap.js';
import type { Testbed } from '../testbed.js';

export interface LeakProbe {
  heapBytes: number;
  /** process.getActiveResourcesInfo(): timers, sockets, file handles ... by type. */
  handles: Record<string, number>;
}

export function leakProbe(): LeakProbe {
  const handles: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) handles[type] = (handles[type] ?? 0) + 1;
  return { heapBytes: heapAfterGc(), handles };
}

/** Handle types whose count grew from `before` to `after`, with the growth. */
export function handleGrowth(before: LeakProbe, after: LeakProbe): Record<string, number> {
  const grown: Record<string, number> = {};
  for (const [type, n] of Object.entries(after.handles)) if (n > (before.handles[type] ?? 0)) grown[type] = n - (before.handles[type] ?? 0);
  return grown;
}

/** Collects process warnings (MaxListenersExceededWarning and the like) while `run` runs. */
export async function collectWarnings<T>(run: () => Promise<T>): Promise<{ result: T; warnings: string[] }> {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(`${w.name}: ${w.message}`);
  };
  process.on('warning', onWarning);
  try {
    const result = await run();
    await new Promise((r) => setTimeout(r, 50)); // warnings are emitted on a later tick
    return { result, warnings };
  } finally {
    process.off('warning', onWarning);
  }
}

/** What a run leaves on disk: replica checkpoint copies in Docker's data root, ctrd-checkpoint* folders. */
export async function diskLeftovers(bed: Testbed): Promise<{ replicaCopies: number; containerdCopies: number }> {
  const containers = await fs.readdir(path.join(bed.dockerRoot, 'containers')).catch(() => [] as string[]);
  let replicaCopies = 0;
  for (const id of containers) {
    const st = await fs.stat(path.join(bed.dockerRoot, 'containers', id, 'checkpoints', REPLICA_CHECKPOINT_NAME)).catch(() => undefined);
    if (st) replicaCopies++;
  }
  const tmp = await fs.readdir(bed.containerdTmp).catch(() => [] as string[]);
  return { replicaCopies, containerdCopies: tmp.filter((n) => n.startsWith('ctrd-checkpoint')).length };
}

export interface CycleStats {
  cycles: number;
  seconds: number;
  failures: { cycle: number; code: string; message: string }[];
}

/** Failures by code, e.g. { CriuFailed: 7 }. */
export function failureCodes(stats: CycleStats): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const f of stats.failures) codes[f.code] = (codes[f.code] ?? 0) + 1;
  return codes;
}

/** `cycles` restore + remove cycles, `lanes` at a time, each a fresh replica id. */
export async function restoreRemoveCycles(
  engine: DockerEngine,
  cycles: number,
  lanes: number,
  specOf: (i: number) => Parameters<DockerEngine['restoreReplica']>[0],
): Promise<CycleStats> {
  const t0 = performance.now();
  const failures: CycleStats['failures'] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < cycles) {
        const i = next++;
        const spec = specOf(i);
        try {
          const replica = await engine.restoreReplica(spec, { timeoutMs: 60_000 });
          await engine.removeReplica(spec.owner.uid, replica.containerId);
        } catch (err) {
          failures.push({ cycle: i, code: String((err as { code?: unknown }).code ?? 'none'), message: (err as Error).message });
        }
      }
    }),
  );
  return { cycles, seconds: (performance.now() - t0) / 1000, failures };
}
