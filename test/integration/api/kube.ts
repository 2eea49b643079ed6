// The real kubectl of the test bed, for the API tests: results with exit code and stderr (the tests
// assert on the apiserver's rejection messages), and the CRD installed as a user would install it.
import { execFile, spawn } from 'node:child_process';
import type { Testbed } from '../testbed.js';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ApiKubectl {
  /** Runs kubectl; never throws for a non-zero exit (the caller asserts on it). */
  run(args: string[], input?: string): Promise<KubectlResult>;
  /** Runs kubectl and throws, with kubectl's stderr, unless it exits 0. */
  ok(args: string[], input?: string): Promise<string>;
  json<T>(args: string[]): Promise<T>;
}

export function apiKubectl(bed: Testbed): ApiKubectl {
  const env = { ...process.env, KUBECONFIG: bed.kubeconfig };
  const run = (args: string[], input?: string): Promise<KubectlResult> =>
    new Promise((resolve, reject) => {
      const child = execFile(bed.kubectl, args, { env, maxBuffer: 32 << 20 }, (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') {
          reject(error instanceof Error ? error : new Error(String(error))); // kubectl did not run at all
          return;
        }
        resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
      });
      child.stdin?.end(input ?? '');
    });
  const ok = async (args: string[], input?: string): Promise<string> => {
    const result = await run(args, input);
    if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
    return result.stdout;
  };
  const json = async <T>(args: string[]): Promise<T> => JSON.parse(await ok([...args, '-o', 'json'])) as T;
  return { run, ok, json };
}

/** Starts kubectl in the background (e.g. `kubectl wait`); resolves when it exits. */
export function startKubectl(bed: Testbed, args: string[]): { exited: Promise<KubectlResult>; kill(): void } {
  const child = spawn(bed.kubectl, args, { env: { ...process.env, KUBECONFIG: bed.kubeconfig } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<KubectlResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  return { exited, kill: () => child.kill('SIGTERM') };
}

export { installCrd } from '../support/kubectl.js';

/** A fresh namespace for one test file; `remove` deletes the resources in it, then the namespace. */
export async function testNamespace(bed: Testbed, prefix: string): Promise<{ name: string; remove(): Promise<void> }> {
  const k = apiKubectl(bed);
  const name = `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e4)}`;
  await k.ok(['create', 'namespace', name]);
  return {
    name,
    async remove() {
      // The test bed runs no namespace controller, so the namespace would stay Terminating with its
      // contents: delete the resources explicitly first. --wait=false: nothing here waits on a finalizer.
      await k.run(['delete', 'crs', '--all', '-n', name, '--wait=false']);
      await k.run(['delete', 'namespace', name, '--wait=false']);
    },
  };
}

/** A CheckpointReplicaSet manifest as JSON text (kubectl reads JSON as YAML). */
export function crsManifest(name: string, namespace: string, spec: unknown): string {
  return JSON.stringify({
    apiVersion: 'checkpoint.dev/v1alpha1',
    kind: 'CheckpointReplicaSet',
    metadata: { name, namespace },
    ...(spec === undefined ? {} : { spec }),
  });
}
