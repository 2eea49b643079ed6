// Proves the test bed is real: a real kube-apiserver (client-node and the built kubectl talk to it)
// and a real Docker engine with CRIU that restores a checkpoint into a NEW container which carries
// on counting where the checkpoint was taken. Each test fails (never skips) when its component is down.
import { execFile } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointContainer } from '../support/workload.js';
import { testbed } from '../testbed.js';

const run = promisify(execFile);
const bed = testbed();

function kubeClient(): k8s.CoreV1Api {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(bed.kubeconfig);
  return kc.makeApiClient(k8s.CoreV1Api);
}

describe('kube-apiserver', () => {
  it('lists namespaces and creates, reads and deletes a ConfigMap through @kubernetes/client-node', async () => {
    const core = kubeClient();
    const namespaces = await core.listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toEqual(expect.arrayContaining(['default', 'kube-system']));

    const name = `smoke-${Date.now()}`;
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name }, data: { greeting: 'hello' } },
    });
    const read = await core.readNamespacedConfigMap({ namespace: 'default', name });
    expect(read.data).toEqual({ greeting: 'hello' });
    await core.deleteNamespacedConfigMap({ namespace: 'default', name });
    await expect(core.readNamespacedConfigMap({ namespace: 'default', name })).rejects.toMatchObject({ code: 404 });
  });

  it('answers the kubectl built at the pinned version, with RBAC on', async () => {
    const env = { ...process.env, KUBECONFIG: bed.kubeconfig };
    const { stdout } = await run(bed.kubectl, ['version', '-o', 'json'], { env });
    const version = JSON.parse(stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
    expect(version.serverVersion.gitVersion).toMatch(/^v1\.(3[4-9]|[4-9]\d)\./);
    expect(version.clientVersion.gitVersion).toBe(version.serverVersion.gitVersion);
    const apis = await run(bed.kubectl, ['api-versions'], { env });
    expect(apis.stdout.split('\n')).toContain('rbac.authorization.k8s.io/v1');
    // An identity with no bindings is refused: authorization is really on.
    const denied = await run(bed.kubectl, ['auth', 'can-i', 'list', 'secrets', '--as', 'nobody'], { env }).catch((err: { stdout: string }) => err);
    expect(denied.stdout.trim()).toBe('no');
  });
});

describe('Docker engine with CRIU', () => {
  const docker = new Docker({ socketPath: bed.dockerSocket });
  const created: string[] = [];

  afterAll(async () => {
    for (const id of created)
      await docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => undefined);
  });

  it('answers a ping on the project socket, with experimental features on', async () => {
    expect((await docker.ping()).toString()).toBe('OK');
    const version = await docker.version();
    expect((version as unknown as { Experimental?: boolean }).Experimental).toBe(true);
  });

  it('restores the sample workload into a NEW container that continues the counter', async () => {
    const source = await docker.createContainer({
      Image: bed.sampleImage,
      Env: ['APP_MEMORY_MB=8'],
      HostConfig: { NetworkMode: 'none' },
      name: `smoke-source-${Date.now()}`,
    });
    created.push(source.id);
    await source.start();
    const before = await waitForCounter(source, 3);
    await checkpointContainer(source, 'smoke');
    expect((await source.inspect()).State.Running).toBe(false);

    const target = await docker.createContainer({
      Image: bed.sampleImage,
      Env: ['APP_MEMORY_MB=8'],
      HostConfig: { NetworkMode: 'none' },
      name: `smoke-target-${Date.now()}`,
    });
    created.push(target.id);
    // Docker restores only from <root>/containers/<id>/checkpoints/<name>/ (no custom dir).
    const from = path.join(bed.dockerRoot, 'containers', source.id, 'checkpoints', 'smoke');
    const to = path.join(bed.dockerRoot, 'containers', target.id, 'checkpoints', 'smoke');
    await mkdir(path.dirname(to), { recursive: true });
    await cp(from, to, { recursive: true });
    // A file of our own makes this copy's upload digest unique: containerd refuses to commit content
    // it already holds ("commit failed: content sha256:...: already exists"), which otherwise bites
    // concurrent restores of one checkpoint and, seen once here, a single restore as well. CRIU
    // ignores files it does not know.
    await writeFile(path.join(to, 'smoke-replica-id'), target.id);
    // dockerode sends start options as the body too, which Docker refuses; query only.
    await target.start({ _query: { checkpoint: 'smoke' }, _body: {} } as unknown as Record<string, unknown>);

    const after = await waitForCounter(target, before + 1);
    expect(after).toBeGreaterThan(before);
    const logs = (await target.logs({ stdout: true, stderr: true })).toString();
    // A cold start would print the start-up lines and begin at 0; a restore prints neither.
    expect(logs).not.toContain('allocated');
    expect(logs).not.toMatch(/counter 0\b/);
  });
});

/** Polls the container's log until it shows a counter >= atLeast; returns the highest seen. */
async function waitForCounter(container: Docker.Container, atLeast: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const logs = (await container.logs({ stdout: true, stderr: true })).toString();
    const counters = [...logs.matchAll(/counter (\d+)/g)].map((m) => Number(m[1]));
    const highest = counters.length ? Math.max(...counters) : -1;
    if (highest >= atLeast) return highest;
    if (Date.now() > deadline) throw new Error(`counter did not reach ${atLeast} in 30 s; log: ${logs.slice(-300)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
