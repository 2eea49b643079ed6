// The agent's image as users get it: built from the project's Dockerfile (hack/build-image.sh: the
// test bed's bases are made from Debian packages, no registry), holding only the compiled agent and
// the production dependencies, and running the agent for real under the DaemonSet's constraints
// (read-only root, all capabilities dropped but the two it needs, no privilege escalation).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_UID } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { freePort, serviceAccountKubeconfig } from '../support/agent.js';
import { httpsGet, metricsReaderToken } from '../support/https.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { checkpointedSource, containersWithLabel, dockerClient } from '../support/workload.js';
import { testbed } from '../testbed.js';

const run = promisify(execFile);
const bed = testbed();
const k = kubectl(bed);
const pkg = JSON.parse(readFileSync(path.join(bed.repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
};
const namespace = `image-${Date.now().toString(36)}`;
const node = `image-node-${Date.now().toString(36)}`;
const sourceName = `${namespace}-source`;
const agentName = `${namespace}-agent`;
let image = '';

/** docker (the CLI) against the test bed's engine. */
async function docker(...args: string[]): Promise<string> {
  try {
    return (await run('docker', args, { env: { ...process.env, DOCKER_HOST: bed.dockerHost }, maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`docker ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** Runs `node -e SCRIPT` in the image (no network, read-only root) and returns its stdout. */
async function nodeInImage(script: string): Promise<string> {
  return docker('run', '--rm', '--network', 'none', '--read-only', '--entrypoint', 'node', image, '--input-type=module', '-e', script);
}

beforeAll(async () => {
  // Cached: a rebuild with nothing changed is Docker's layer cache.
  const { stdout } = await run('bash', [path.join(bed.repoRoot, 'hack/build-image.sh')], { env: process.env, maxBuffer: 16 << 20 });
  image = stdout.trim().split('\n').pop() ?? '';
  expect(image).toBe(`crs-controller:${pkg.version}`);
}, 900_000);

afterAll(async () => {
  await docker('rm', '-f', agentName).catch(() => undefined);
  await k('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
  await k('delete', 'node', node).catch(() => undefined);
  const engine = dockerClient(bed);
  for (const c of await containersWithLabel(bed, 'checkpoint.dev/owner-namespace', namespace)) {
    await engine
      .getContainer(c.id)
      .remove({ force: true })
      .catch(() => undefined);
  }
  await engine
    .getContainer(sourceName)
    .remove({ force: true })
    .catch(() => undefined);
});

describe('the agent image', () => {
  it('runs the compiled agent: --help', async () => {
    const help = await docker('run', '--rm', '--network', 'none', '--read-only', image, '--help');
    expect(help).toMatch(/^Usage: crs-controller/);
    const size = Number((await docker('image', 'inspect', '-f', '{{.Size}}', image)).trim());
    console.log(`image ${image}: ${(size / 1e6).toFixed(0)} MB`);
  });

  it('holds exactly the production dependencies of the lockfile, none of the dev-only ones', async () => {
    const listed = JSON.parse(
      await nodeInImage(
        "import fs from 'node:fs'; const top = fs.readdirSync('node_modules').filter((d) => !d.startsWith('.'));" +
          "console.log(JSON.stringify(top.flatMap((d) => d.startsWith('@') ? fs.readdirSync('node_modules/' + d).map((s) => d + '/' + s) : [d])))",
      ),
    ) as string[];
    // The lockfile marks what only the dev dependencies need (`dev: true`); some of package.json's
    // devDependencies are also needed by production ones (@types/node by @kubernetes/client-node).
    const lock = JSON.parse(readFileSync(path.join(bed.repoRoot, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const top = Object.entries(lock.packages).flatMap(([key, entry]) => {
      const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(key);
      return m?.[1] ? [{ name: m[1], dev: entry.dev === true }] : [];
    });
    expect(listed.sort()).toEqual(
      top
        .filter((p) => !p.dev)
        .map((p) => p.name)
        .sort(),
    );
    for (const dep of Object.keys(pkg.dependencies)) expect(listed).toContain(dep);
    for (const dev of ['typescript', 'tsx', 'vitest', 'yaml']) expect(listed).not.toContain(dev);
    // No compiler and no sources: only dist/ and what it needs.
    expect((await nodeInImage("import fs from 'node:fs'; console.log(fs.readdirSync('.').sort().join(' '))")).trim()).toBe('dist node_modules package.json');
  });

  it('loads every module the agent imports with production dependencies only; a dev dependency would fail', async () => {
    // ESM loads the whole static import graph before running anything: importing main's graph
    // (agent.js and everything under it) proves nothing it needs is missing.
    const loaded = await nodeInImage("const m = await import('/app/dist/controller/agent.js'); console.log(typeof m.startAgent)");
    expect(loaded.trim()).toBe('function');
    // The same check catches a dev dependency: the build-time generator imports `yaml`.
    await expect(nodeInImage("await import('/app/dist/controller/api/generated-files.js')")).rejects.toThrow(/Cannot find package 'yaml'/);
  });

  it("restores replicas under the DaemonSet's constraints: read-only root, two capabilities, its ServiceAccount", async () => {
    await installCrd(bed);
    await k('create', 'namespace', namespace);
    await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } }));
    await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: namespace });
    const kubeconfig = await serviceAccountKubeconfig(bed, k);
    const scraper = await metricsReaderToken(bed, k, namespace);
    const ca = JSON.parse(readFileSync(kubeconfig, 'utf8')).clusters[0].cluster['certificate-authority'] as string;
    const port = await freePort();
    // The DaemonSet's pod, as `docker run`: the same mounts at the same in-container paths, root
    // without privileges (no new privileges, capabilities ALL dropped but DAC_OVERRIDE and FOWNER,
    // read-only root filesystem, a small writable /tmp), the host's network for the loopback apiserver.
    await docker(
      'run',
      '-d',
      '--name',
      agentName,
      '--network',
      'host',
      '--read-only',
      '--tmpfs',
      '/tmp:size=64m',
      '--security-opt',
      'no-new-privileges',
      '--cap-drop',
      'ALL',
      '--cap-add',
      'DAC_OVERRIDE',
      '--cap-add',
      'FOWNER',
      '--user',
      '0:0',
      '-v',
      `${bed.dockerSocket}:/var/run/docker.sock`,
      '-v',
      `${bed.dockerRoot}:/var/lib/docker`,
      '-v',
      `${bed.containerdTmp}:/host/tmp`,
      '-v',
      `${kubeconfig}:/etc/crs/kubeconfig:ro`,
      '-v',
      `${ca}:${ca}:ro`,
      '-e',
      `NODE_NAME=${node}`,
      image,
      '--kubeconfig=/etc/crs/kubeconfig',
      `--namespace=${namespace}`,
      '--containerd-tmp=/host/tmp',
      `--metrics-address=127.0.0.1:${port}`,
    );
    const deadline = Date.now() + 60_000;
    // The image serves its endpoints over HTTPS (a self-signed certificate), as in the DaemonSet.
    while (
      !(await httpsGet(`https://127.0.0.1:${port}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      ))
    ) {
      if (Date.now() > deadline) throw new Error(`the image's agent not ready in 60 s: ${await docker('logs', agentName)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    await k.apply(
      JSON.stringify({
        apiVersion: 'checkpoint.dev/v1alpha1',
        kind: 'CheckpointReplicaSet',
        metadata: { name: 'app', namespace },
        spec: {
          replicas: 3,
          checkpoint: { container: sourceName, name: 'warm' },
          template: { image: bed.sampleImage, env: [{ name: 'APP_MEMORY_MB', value: '16' }] },
        },
      }),
    );
    await k('-n', namespace, 'wait', 'crs/app', '--for=condition=Ready', '--timeout=180s');
    const crs = await k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', 'app');
    expect(crs.status).toMatchObject({ replicas: 3, readyReplicas: 3, failedReplicas: 0 });
    const running = await containersWithLabel(bed, OWNER_UID, crs.metadata.uid);
    expect(running.filter((c) => c.state === 'running')).toHaveLength(3);
    // Placed its checkpoint copies under the data root through the mount, and removed containerd's
    // leaked copies through the other one.
    const answer = await httpsGet(`https://127.0.0.1:${port}/metrics`, { token: scraper.token });
    expect(answer.status).toBe(200);
    const metrics = answer.body;
    expect(metrics).toMatch(/^crs_restores_total\{[^}]*result="success"[^}]*\} 3$/m);
    expect(metrics).toMatch(/^crs_checkpoint_copies_reclaimed_bytes_total(\{[^}]*\})? [1-9]/m);
    // Deleting the resource removes its containers (through the socket) and the finalizer.
    await k('-n', namespace, 'delete', 'crs', 'app', '--timeout=120s');
    expect(await containersWithLabel(bed, OWNER_UID, crs.metadata.uid)).toHaveLength(0);
    // It stops cleanly on SIGTERM (docker stop), as on pod deletion.
    await docker('stop', '-t', '30', agentName);
    await k('delete', 'clusterrolebinding', scraper.binding);
    expect((await docker('inspect', '-f', '{{.State.ExitCode}}', agentName)).trim()).toBe('0');
  });
});
