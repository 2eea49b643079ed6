// What people do today without this controller, over the same real engine: plain Docker restores
// of one checkpoint into new containers, the way a shell loop of `docker create` + copy +
// `docker start --checkpoint` does it. Used by the benchmark as its baselines.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';

const run = promisify(execFile);

export interface PlainSource {
  containerId: string;
  checkpoint: string;
  image: string;
  env: string[];
}

export interface RestoreOutcome {
  containerId: string;
  ok: boolean;
  attempts: number;
  errors: string[];
}

export interface PlainRestoreOptions {
  /** Add a small file holding the container id to each copy, so each upload has its own digest. */
  uniqueCopy: boolean;
  /** Tries per container (1 = no retry). */
  maxTries: number;
  retryDelayMs: number;
  label: Record<string, string>;
}

/** Creates a container, hard-links the checkpoint into it, starts it from the checkpoint. */
export async function plainRestore(
  docker: Docker,
  dockerRoot: string,
  source: PlainSource,
  name: string,
  options: PlainRestoreOptions,
): Promise<RestoreOutcome> {
  const container = await docker.createContainer({
    name,
    Image: source.image,
    Env: source.env,
    Labels: options.label,
    HostConfig: { NetworkMode: 'none' },
  });
  const from = path.join(dockerRoot, 'containers', source.containerId, 'checkpoints', source.checkpoint);
  const to = path.join(dockerRoot, 'containers', container.id, 'checkpoints', source.checkpoint);
  await mkdir(path.dirname(to), { recursive: true });
  await run('cp', ['-al', from, to]);
  if (options.uniqueCopy) await writeFile(path.join(to, 'replica-id'), container.id);
  const outcome: RestoreOutcome = { containerId: container.id, ok: false, attempts: 0, errors: [] };
  while (outcome.attempts < options.maxTries) {
    outcome.attempts++;
    try {
      // dockerode also sends start options as the body, which Docker refuses: query string only.
      await container.start({ _query: { checkpoint: source.checkpoint }, _body: {} } as unknown as Record<string, unknown>);
      outcome.ok = true;
      break;
    } catch (err) {
      outcome.errors.push(err instanceof Error ? err.message : String(err));
      if (outcome.attempts < options.maxTries) await new Promise((r) => setTimeout(r, options.retryDelayMs));
    }
  }
  return outcome;
}

/** Runs fn over items with at most `limit` at once; Infinity = all at once. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  });
  await Promise.all(workers);
  return results;
}
