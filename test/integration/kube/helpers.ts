// Shared by the kube layer's integration tests: the real apiserver of the test bed through
// client-node and the real kubectl, the CRD installed from the committed file, a namespace per file.
import { KubeConfig } from '@kubernetes/client-node';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { createCrsClient, type CrsClient } from '../../../controller/kube/client.js';
import { installCrd as installSharedCrd, kubectl, type Kubectl } from '../support/kubectl.js';
import { testbed } from '../testbed.js';

const bed = testbed();
export const k: Kubectl = kubectl(bed);

export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(bed.kubeconfig);
  return kc;
}

export async function installCrd(): Promise<void> {
  await installSharedCrd(bed);
}

/** A namespace for one test file; remove() strips finalizers, deletes the resources, then it. */
export async function testNamespace(prefix: string): Promise<{ name: string; remove(): Promise<void> }> {
  const name = `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e4)}`;
  await k('create', 'namespace', name);
  return {
    name,
    async remove() {
      const client = createCrsClient(kubeConfig());
      const list = await client.list(name).catch(() => ({ items: [] as CheckpointReplicaSet[] }));
      for (const o of list.items) {
        if (o.metadata.finalizers?.length) {
          await k('patch', 'crs', o.metadata.name, '-n', name, '--type=merge', '-p', '{"metadata":{"finalizers":null}}').catch(() => undefined);
        }
      }
      await k('delete', 'crs', '--all', '-n', name, '--wait=false').catch(() => undefined);
      // The test bed runs no namespace controller: the namespace stays Terminating, empty.
      await k('delete', 'namespace', name, '--wait=false').catch(() => undefined);
    },
  };
}

/** Creates a valid CheckpointReplicaSet and returns it as stored (defaults filled, uid set). */
export async function createResource(
  client: CrsClient,
  namespace: string,
  name: string,
  extra: { finalizers?: string[]; replicas?: number } = {},
): Promise<CheckpointReplicaSet> {
  await k.apply(
    JSON.stringify({
      apiVersion: 'checkpoint.dev/v1alpha1',
      kind: 'CheckpointReplicaSet',
      metadata: { name, namespace, ...(extra.finalizers ? { finalizers: extra.finalizers } : {}) },
      spec: {
        replicas: extra.replicas ?? 3,
        checkpoint: { container: 'app-template', name: 'warm' },
        template: { image: bed.sampleImage },
      },
    }),
  );
  return client.get(namespace, name);
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
