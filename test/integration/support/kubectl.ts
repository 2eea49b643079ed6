// The real kubectl of the test bed, for end-to-end tests that act as a user would.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Testbed } from '../testbed.js';

const run = promisify(execFile);

export interface Kubectl {
  (...args: string[]): Promise<string>;
  /** kubectl apply -f - with the given manifest (YAML or JSON text). */
  apply(manifest: string, ...args: string[]): Promise<string>;
  json<T>(...args: string[]): Promise<T>;
}

export function kubectl(bed: Testbed): Kubectl {
  const env = { ...process.env, KUBECONFIG: bed.kubeconfig };
  const call = async (...args: string[]): Promise<string> => {
    try {
      return (await run(bed.kubectl, args, { env, maxBuffer: 64 << 20 })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`kubectl ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
    }
  };
  const apply = (manifest: string, ...args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = execFile(bed.kubectl, ['apply', '-f', '-', ...args], { env }, (err, stdout, stderr) =>
        err ? reject(new Error(`kubectl apply failed: ${stderr.trim() || err.message}`)) : resolve(stdout),
      );
      child.stdin?.end(manifest);
    });
  const json = async <T>(...args: string[]): Promise<T> => JSON.parse(await call(...args, '-o', 'json')) as T;
  return Object.assign(call, { apply, json });
}

/**
 * Installs (or updates) the CRD from the committed file with server-side apply and waits until it is
 * Established. Idempotent: every test file, the demo and the benchmark share one apiserver.
 */
export async function installCrd(bed: Testbed): Promise<void> {
  const k = kubectl(bed);
  const file = path.join(bed.repoRoot, 'crds/checkpoint.dev_checkpointreplicasets.yaml');
  await k('apply', '--server-side', '--force-conflicts', '--field-manager=crs-tests', '-f', file);
  await k('wait', '--for=condition=Established', 'crd/checkpointreplicasets.checkpoint.dev', '--timeout=60s');
}
