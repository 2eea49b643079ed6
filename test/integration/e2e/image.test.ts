// The agent's image as users get it: built from the project's Dockerfile (hack/build-image.sh: the
// test bed's bases are made from Debian packages, no registry), holding only the bundled agent
// (dist/crs-agent.mjs, its dependencies inside), and running the agent for real under the DaemonSet's constraints
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

  it('holds the bundled agent and package.json only: no node_modules, no compiler, no sources', async () => {
    const files = await nodeInImage(
      "import fs from 'node:fs'; console.log(fs.readdirSync('.').sort().join(' ') + '|' + fs.readdirSync('dist').sort().join(' '))",
    );
    expect(files.trim()).toBe('dist package.json|crs-agent.mjs crs-agent.mjs.LEGAL.txt');
    // The runtime dependencies are inside the bundle: esbuild names each module's source in a comment.
    const deps = Object.keys(pkg.dependencies);
    const inside = await nodeInImage(
      `import fs from 'node:fs'; const b = fs.readFileSync('dist/crs-agent.mjs', 'utf8'); console.log(JSON.stringify(${JSON.stringify(deps)}.filter((d) => b.includes('// node_modules/' + d + '/'))))`,
    );
    expect(JSON.parse(inside)).toEqual(deps);
  });

  it('runs as the Dockerfile says: node --max-semi-space-size=2 with MALLOC_ARENA_MAX=2', async () => {
    const entry = (await docker('image', 'inspect', '-f', '{{json .Config.Entrypoint}}|{{json .Config.Env}}', image)).trim();
    expect(entry).toContain('["node","--max-semi-space-size=2","dist/crs-agent.mjs"]');
    expect(entry).toContain('MALLOC_ARENA_MAX=2');
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
