// The test bed's Kustomize overlay (overlays/testbed), rendered by the real kubectl: it changes only
// what it says it changes from the base, its values are the default test bed's (hack/lib.sh), so the
// default bed's cluster test applies it as committed, and the apiserver accepts it (server dry run).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { kubectl } from '../support/kubectl.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);

interface Container {
  args: string[];
  env: { name: string; value?: string }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { host?: string; port: string } };
  readinessProbe: { httpGet: { host?: string; port: string } };
  securityContext: unknown;
  image: string;
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface DaemonSet {
  kind: 'DaemonSet';
  spec: { template: { spec: { hostNetwork?: boolean; containers: Container[]; volumes: { name: string; hostPath?: { path: string } }[] } } };
}

async function daemonSet(dir: string): Promise<DaemonSet> {
  const docs = parseAllDocuments(await k('kustomize', path.join(bed.repoRoot, dir))).map((d) => d.toJS() as { kind: string });
  const ds = docs.find((d): d is DaemonSet => d.kind === 'DaemonSet');
  if (!ds) throw new Error(`no DaemonSet rendered from ${dir}`);
  return ds;
}

/** A default of hack/lib.sh, e.g. APISERVER_PORT="${APISERVER_PORT:-16443}". */
function libDefault(name: string): string {
  const m = new RegExp(`^${name}="\\$\\{${name}:-([^}]+)\\}"`, 'm').exec(readFileSync(path.join(bed.repoRoot, 'hack/lib.sh'), 'utf8'));
  if (!m?.[1]) throw new Error(`no default for ${name} in hack/lib.sh`);
  return m[1];
}

describe('overlays/testbed', () => {
  it("points the host side of the mounts at the default test bed's engine and keeps the pod's side", async () => {
    const base = await daemonSet('manifests');
    const overlay = await daemonSet('overlays/testbed');
    const hostPath = (ds: DaemonSet, name: string) => ds.spec.template.spec.volumes.find((v) => v.name === name)?.hostPath?.path;
    const root = libDefault('CRS_DOCKER_ROOT');
    expect(hostPath(overlay, 'docker-socket')).toBe(`${libDefault('CRS_DOCKER_RUN')}/docker.sock`);
    expect(hostPath(overlay, 'docker-root')).toBe(root);
    // hack/lib.sh: CRS_CONTAINERD_TMP="$CRS_DOCKER_ROOT/containerd-tmp"
    expect(hostPath(overlay, 'containerd-tmp')).toBe(`${root}/containerd-tmp`);
    expect(hostPath(overlay, 'checkpoint-root')).toBe(hostPath(base, 'checkpoint-root'));
    const [b, o] = [base.spec.template.spec.containers[0], overlay.spec.template.spec.containers[0]];
    // The same mounts inside the pod (plus the token), the same image and security context.
    expect(o?.volumeMounts.filter((m) => m.name !== 'serviceaccount-token')).toEqual(b?.volumeMounts);
    expect(o?.volumeMounts.find((m) => m.name === 'serviceaccount-token')).toMatchObject({
      mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
      readOnly: true,
    });
    expect(o?.image).toBe(b?.image);
    expect(o?.securityContext).toEqual(b?.securityContext);
  });

  it('serves metrics and probes on one loopback port of the host network, and reaches the apiserver there', async () => {
    const overlay = await daemonSet('overlays/testbed');
    expect(overlay.spec.template.spec.hostNetwork).toBe(true);
    const c = overlay.spec.template.spec.containers[0];
    const address = c?.args.find((a) => a.startsWith('--metrics-address='))?.split('=')[1];
    const port = c?.ports.find((p) => p.name === 'metrics')?.containerPort;
    expect(c?.ports).toHaveLength(1);
    expect(address).toBe(`127.0.0.1:${port}`);
    for (const probe of [c?.livenessProbe, c?.readinessProbe]) expect(probe?.httpGet).toMatchObject({ host: '127.0.0.1', port: 'metrics' });
    const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: libDefault('APISERVER_PORT') });
  });

  it('is accepted by the apiserver (server-side dry run)', async () => {
    const out = await k('apply', '--server-side', '--force-conflicts', '--dry-run=server', '-k', path.join(bed.repoRoot, 'overlays/testbed'));
    expect(out).toMatch(/daemonset\.apps\/crs-controller serverside-applied \(server dry run\)/);
  });
});
