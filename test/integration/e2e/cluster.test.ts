// End to end on a real node, as users deploy: `kubectl apply -k` of the test bed's overlay starts the
// DaemonSet's pod on a real kubelet (hack/cluster-up.sh: kubelet on its own CRI containerd, the
// controller manager's DaemonSet and token controllers, the scheduler), from the image built by the
// Dockerfile. The agent inside works only through the pod's mounts, ServiceAccount token, security
// context and probes, on the test bed's Docker engine with CRIU.
import { execFile } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { OWNER_UID } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { eventually } from '../kube/helpers.js';
import { freePort, sample } from '../support/agent.js';
import { httpsGet, metricsReaderToken } from '../support/https.js';
import { kubectl } from '../support/kubectl.js';
import { startPrometheus } from '../support/prometheus.js';
import { parseEnvFile } from '../support/testbed-env.js';
import { checkpointedSource, containersWithLabel, dockerClient, watchInFlight } from '../support/workload.js';
import { testbed } from '../testbed.js';

const run = promisify(execFile);
const bed = testbed();
const k = kubectl(bed);
const stamp = Date.now().toString(36);
const namespace = `cluster-${stamp}`;
const sourceName = `${namespace}-source`;
const CHECKPOINT_ROOT = '/var/lib/crs-checkpoints';
const pathSource = path.join(CHECKPOINT_ROOT, namespace, 'warm');
const ds = ['-n', 'crs-system'];
let cluster: Record<string, string> = {};
let metricsPort = 0;
/** A bearer token allowed to get /metrics (the agent serves it over HTTPS to authorized tokens only). */
let scraper: { token: string; file: string; binding: string } | undefined;

interface Pod {
  metadata: { name: string; uid: string; namespace: string; deletionTimestamp?: string };
  spec: { nodeName?: string; serviceAccountName?: string; containers: { image: string; args?: string[] }[] };
  status: {
    phase?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { ready: boolean; image: string; containerID?: string; restartCount: number }[];
  };
}

async function agentPods(): Promise<Pod[]> {
  const list = await k.json<{ items: Pod[] }>(...ds, 'get', 'pods', '-l', 'app.kubernetes.io/name=crs-controller');
  return list.items.filter((p) => !p.metadata.deletionTimestamp);
}

/** The one Ready agent pod on the node (after a rollout: running `image`). */
async function readyAgentPod(image?: string): Promise<Pod> {
  return eventually(
    'a Ready agent pod',
    async () => {
      const pods = await agentPods();
      const pod = pods.length === 1 ? pods[0] : undefined;
      const ready = pod?.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      return pod && ready && (!image || pod.spec.containers[0]?.image === image) ? pod : undefined;
    },
    180_000,
  );
}

/** The agent's /metrics, scraped from the pod (host network, loopback) over HTTPS with a scraper's token. */
async function podMetrics(): Promise<string> {
  const answer = await httpsGet(`https://127.0.0.1:${metricsPort}/metrics`, { token: scraper?.token ?? '' });
  if (answer.status !== 200) throw new Error(`GET /metrics answered ${answer.status}: ${answer.body}`);
  return answer.body;
}

function restoresTotal(metrics: string): number {
  return (
    (sample(metrics, 'crs_restores_total', { namespace, result: 'success' }) ?? 0) +
    (sample(metrics, 'crs_restores_total', { namespace, result: 'failure' }) ?? 0)
  );
}

/** The OCI spec the kubelet's runtime gave the agent container (what the pod really runs with). */
async function runtimeSpec(pod: Pod): Promise<{
  root: { readonly: boolean };
  process: { noNewPrivileges: boolean; user: { uid: number }; capabilities: { effective?: string[]; bounding?: string[] } };
  mounts: { destination: string; source: string; options?: string[] }[];
}> {
  const id = pod.status.containerStatuses?.[0]?.containerID?.replace('containerd://', '') ?? '';
  const { stdout } = await run('ctr', ['--address', cluster.CRI_SOCK ?? '', '--namespace', 'k8s.io', 'containers', 'info', id], { maxBuffer: 16 << 20 });
  return (JSON.parse(stdout) as { Spec: never }).Spec;
}

function example(replicas: number, checkpoint: Record<string, string>, name = 'app'): string {
  const crs = parse(readFileSync(path.join(bed.repoRoot, 'manifests/examples/replicaset.yaml'), 'utf8')) as CheckpointReplicaSet;
  crs.metadata = { ...crs.metadata, name, namespace };
  crs.spec.replicas = replicas;
  crs.spec.checkpoint = checkpoint;
  return JSON.stringify(crs);
}

async function waitReady(name: string): Promise<CheckpointReplicaSet> {
  await k('-n', namespace, 'wait', `crs/${name}`, '--for=condition=Ready', '--timeout=300s');
  return k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', name);
}

/**
 * The committed overlay (overlays/testbed), applied through one more layer only for what this test
 * bed changes from the default one: its engine's socket, data root and containerd folder, its
 * apiserver's port, a free metrics port; and the agent watches this file's namespace only, so
 * resources other test files left behind are not its business.
 */
function writeOverlay(): string {
  const dir = path.join(bed.repoRoot, '.local/overlay-cluster');
  mkdirSync(dir, { recursive: true });
  const apiserverPort = new URL(
    (parse(readFileSync(bed.kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] }).clusters[0]?.cluster.server ?? '',
  ).port;
  const kustomization = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: [path.relative(dir, path.join(bed.repoRoot, 'overlays/testbed'))],
    patches: [
      {
        target: { kind: 'DaemonSet', name: 'crs-controller' },
        patch: JSON.stringify([
          { op: 'replace', path: '/spec/template/spec/containers/0/args/3', value: `--metrics-address=127.0.0.1:${metricsPort}` },
          { op: 'replace', path: '/spec/template/spec/containers/0/ports/0/containerPort', value: metricsPort },
        ]),
      },
      {
        patch: JSON.stringify({
          apiVersion: 'apps/v1',
          kind: 'DaemonSet',
          metadata: { name: 'crs-controller', namespace: 'crs-system' },
          spec: {
            template: {
              spec: {
                containers: [
                  {
                    name: 'agent',
                    env: [
                      { name: 'KUBERNETES_SERVICE_PORT', value: apiserverPort },
                      { name: 'WATCH_NAMESPACE', value: namespace },
                    ],
                  },
                ],
                volumes: [
                  { name: 'docker-socket', hostPath: { path: bed.dockerSocket } },
                  { name: 'docker-root', hostPath: { path: bed.dockerRoot } },
                  { name: 'containerd-tmp', hostPath: { path: bed.containerdTmp } },
                ],
              },
            },
          },
        }),
      },
    ],
  };
  writeFileSync(path.join(dir, 'kustomization.yaml'), JSON.stringify(kustomization, null, 2));
  return dir;
}

beforeAll(async () => {
  await run('bash', [path.join(bed.repoRoot, 'hack/cluster-up.sh')], { env: process.env, maxBuffer: 64 << 20 });
  cluster = parseEnvFile(path.join(bed.repoRoot, '.local/cluster.env'));
  metricsPort = await freePort();
  await k('create', 'namespace', namespace);
  await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: namespace });
  await k('apply', '--server-side', '--force-conflicts', '-k', writeOverlay());
  scraper = await metricsReaderToken(bed, k, namespace);
}, 900_000);

afterAll(async () => {
  // Resources first, while the agent still runs to remove their containers and finalizers.
  await k('-n', namespace, 'delete', 'crs', '--all', '--timeout=120s').catch(() => undefined);
  // No agent outlives this file: later files' resources are not its business.
  await k(...ds, 'delete', 'daemonset', 'crs-controller', '--cascade=foreground', '--timeout=120s').catch(() => undefined);
  await eventually('the agent pod gone', async () => ((await agentPods()).length === 0 ? true : undefined), 120_000).catch(() => undefined);
  await k('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
  if (scraper) await k('delete', 'clusterrolebinding', scraper.binding).catch(() => undefined);
  const docker = dockerClient(bed);
  for (const c of await containersWithLabel(bed, 'checkpoint.dev/owner-namespace', namespace)) {
    await docker
      .getContainer(c.id)
      .remove({ force: true })
      .catch(() => undefined);
  }
  await docker
    .getContainer(sourceName)
    .remove({ force: true })
    .catch(() => undefined);
  rmSync(path.join(CHECKPOINT_ROOT, namespace), { recursive: true, force: true });
  // The other files test against an apiserver with no controllers running: leave it so. (The next
  // run starts the node again in seconds; the builds stay cached.)
  await run('bash', [path.join(bed.repoRoot, 'hack/cluster-down.sh')], { env: process.env });
}, 300_000);

describe('the DaemonSet on a real kubelet', () => {
  let uid = '';

  it('runs the pod on the node, Ready through its probes, with the in-cluster ServiceAccount token', async () => {
    await k(...ds, 'rollout', 'status', 'daemonset/crs-controller', '--timeout=240s');
    const pod = await readyAgentPod();
    expect(pod.spec.nodeName).toBe(cluster.CRS_NODE_NAME);
    expect(pod.spec.serviceAccountName).toBe('crs-controller');
    expect(pod.spec.containers[0]?.image).toBe(cluster.AGENT_IMAGE);
    // No kubeconfig anywhere: the agent can only have reached the apiserver with the pod's token.
    expect(pod.spec.containers[0]?.args?.join(' ')).not.toContain('kubeconfig');
    const spec = await runtimeSpec(pod);
    expect(spec.mounts.find((m) => m.destination === '/var/run/secrets/kubernetes.io/serviceaccount')).toBeDefined();
    // The security context as the runtime applied it: read-only root, root without privileges,
    // exactly the two capabilities the manifests grant.
    expect(spec.root.readonly).toBe(true);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.process.user.uid).toBe(0);
    expect([...(spec.process.capabilities.bounding ?? [])].sort()).toEqual(['CAP_DAC_OVERRIDE', 'CAP_FOWNER']);
    expect(spec.mounts.find((m) => m.destination === CHECKPOINT_ROOT)?.options).toContain('ro');
    // Ready means /readyz said so (over HTTPS, as the probes ask): the engine reached through the
    // socket mount, the caches synced. /metrics needs an authorized token; without one, 401.
    expect((await httpsGet(`https://127.0.0.1:${metricsPort}/readyz`)).body).toMatch(/ok/i);
    expect((await httpsGet(`https://127.0.0.1:${metricsPort}/metrics`)).status).toBe(401);
  });

  it('converges the example resource on the node: restored replicas, at most 10 in flight', async () => {
    await k.apply(example(12, { container: sourceName, name: 'warm' }));
    uid = (await k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', 'app')).metadata.uid;
    const inFlight = await watchInFlight(bed, OWNER_UID, uid);
    let crs: CheckpointReplicaSet;
    try {
      crs = await waitReady('app');
    } finally {
      inFlight.stop();
    }
    expect(crs.status).toMatchObject({ replicas: 12, readyReplicas: 12, failedReplicas: 0 });
    expect(crs.status?.nodes?.map((n) => n.node)).toEqual([cluster.CRS_NODE_NAME]);
    const running = await containersWithLabel(bed, OWNER_UID, uid);
    expect(running.filter((c) => c.state === 'running')).toHaveLength(12);
    expect(inFlight.peak()).toBeGreaterThan(0);
    expect(inFlight.peak()).toBeLessThanOrEqual(10);
    // Restored, not cold-started: the sample app logs 'allocated' only on a cold start.
    const logs = (
      await dockerClient(bed)
        .getContainer(running[0]?.id ?? '')
        .logs({ stdout: true })
    ).toString();
    expect(logs).not.toContain('allocated');
    // Its checkpoint copies were placed under the data root through the pod's mount (else no
    // restore), and containerd's leaked copies reclaimed through the other one.
    const metrics = await podMetrics();
    expect(sample(metrics, 'crs_restores_total', { namespace, name: 'app', result: 'success' })).toBeGreaterThanOrEqual(12);
    expect(sample(metrics, 'crs_checkpoint_copies_reclaimed_bytes_total', { node: cluster.CRS_NODE_NAME ?? '' }) ?? 0).toBeGreaterThan(0);
  });

  it('restores from a path source under the read-only checkpoint root', async () => {
    const source = await dockerClient(bed).getContainer(sourceName).inspect();
    mkdirSync(path.dirname(pathSource), { recursive: true });
    cpSync(path.join(bed.dockerRoot, 'containers', source.Id, 'checkpoints', 'warm'), pathSource, { recursive: true });
    await k.apply(example(2, { path: pathSource }, 'from-path'));
    const crs = await waitReady('from-path');
    expect(crs.status).toMatchObject({ replicas: 2, readyReplicas: 2 });
    expect((await containersWithLabel(bed, OWNER_UID, crs.metadata.uid)).filter((c) => c.state === 'running')).toHaveLength(2);
    await k('-n', namespace, 'delete', 'crs', 'from-path', '--timeout=120s');
  });

  it('a deleted pod stops cleanly; the new one adopts the replicas: same containers, no restore repeated', async () => {
    const before = (await containersWithLabel(bed, OWNER_UID, uid)).map((c) => c.id).sort();
    expect(before).toHaveLength(12);
    const old = await readyAgentPod();
    // Keep the old container's log open: the kubelet removes the file with the pod.
    const logDir = path.join(cluster.POD_LOGS_DIR ?? '', `crs-system_${old.metadata.name}_${old.metadata.uid}`, 'agent');
    const fd = openSync(path.join(logDir, '0.log'), 'r');
    const started = Date.now();
    await k(...ds, 'delete', 'pod', old.metadata.name, '--timeout=120s');
    // Well inside the 60 s grace period: it stopped on SIGTERM, it was not killed.
    expect(Date.now() - started).toBeLessThan(45_000);
    const buffer = Buffer.alloc(4 << 20);
    const oldLog = buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0)).toString();
    closeSync(fd);
    expect(oldLog).toContain('stopped cleanly');

    const pod = await readyAgentPod();
    expect(pod.metadata.uid).not.toBe(old.metadata.uid);
    const crs = await waitReady('app');
    expect(crs.status?.readyReplicas).toBe(12);
    expect((await containersWithLabel(bed, OWNER_UID, uid)).map((c) => c.id).sort()).toEqual(before);
    const metrics = await eventually(
      'the new agent reporting the replicas',
      async () => {
        const m = await podMetrics().catch(() => '');
        return sample(m, 'crs_replicas_ready', { namespace, name: 'app' }) === 12 ? m : undefined;
      },
      60_000,
    );
    expect(restoresTotal(metrics)).toBe(0);
  });

  it('a rolling update to a new image tag keeps the replicas running and Ready throughout', async () => {
    const before = (await containersWithLabel(bed, OWNER_UID, uid)).map((c) => c.id).sort();
    // Another tag of the same image: a new pod template, as a release would be.
    const tag = `${cluster.AGENT_IMAGE}-rollout`;
    await run('docker', ['tag', cluster.AGENT_IMAGE ?? '', tag], { env: { ...process.env, DOCKER_HOST: bed.dockerHost } });
    await run('bash', [path.join(bed.repoRoot, 'hack/cluster-load-image.sh'), tag], { env: process.env });
    // Watch the resource and the containers throughout the rollout, noting which samples fell
    // inside it (from `set image` until the new pod is Ready).
    const seen: { ready: string | undefined; ids: string; rolling: boolean }[] = [];
    let watching = true;
    let rolling = false;
    const watcher = (async () => {
      while (watching) {
        const during = rolling;
        const [crs, containers] = await Promise.all([
          k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', 'app'),
          containersWithLabel(bed, OWNER_UID, uid),
        ]);
        const ids = containers
          .filter((c) => c.state === 'running')
          .map((c) => c.id)
          .sort()
          .join(',');
        seen.push({ ready: crs.status?.conditions?.find((c) => c.type === 'Ready')?.status, ids, rolling: during && rolling });
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      rolling = true;
      await k(...ds, 'set', 'image', 'daemonset/crs-controller', `agent=${tag}`);
      await k(...ds, 'rollout', 'status', 'daemonset/crs-controller', '--timeout=240s');
      await readyAgentPod(tag);
      rolling = false;
      await waitReady('app');
    } finally {
      rolling = false;
      watching = false;
      await watcher;
    }
    // The samples cover the rollout itself, not only its ends.
    expect(seen.filter((s) => s.rolling).length).toBeGreaterThanOrEqual(2);
    expect(seen.filter((s) => s.ready !== 'True')).toEqual([]);
    expect(seen.filter((s) => s.ids !== before.join(','))).toEqual([]);
    const metrics = await eventually(
      'the updated agent reporting the replicas',
      async () => {
        const m = await podMetrics().catch(() => '');
        return sample(m, 'crs_replicas_ready', { namespace, name: 'app' }) === 12 ? m : undefined;
      },
      60_000,
    );
    expect(restoresTotal(metrics)).toBe(0);
  });

  it("Prometheus scrapes the pod's metrics", async () => {
    // As the ServiceMonitor scrapes: HTTPS (the agent's self-signed certificate) with a bearer token.
    const prom = await startPrometheus({
      jobs: [{ job: 'crs-agent', targets: [`127.0.0.1:${metricsPort}`], https: { insecureSkipVerify: true }, bearerTokenFile: scraper?.file ?? '' }],
    });
    try {
      const ready = await prom.waitFor(`crs_replicas_ready{namespace="${namespace}",name="app"}`, (r) => r[0]?.value === 12);
      expect(ready[0]?.metric.node).toBe(cluster.CRS_NODE_NAME);
    } finally {
      await prom.stop();
    }
  });
});
