// The Kustomize base against the real apiserver: it applies (server dry run), and its ClusterRole is
// enough and no more for what the agent does, checked both with `kubectl auth can-i --as` over every
// verb and with real requests made with a token of the ServiceAccount.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { GROUP, PLURAL, VERSION } from '../../../controller/api/schema.js';
import { parseConfig } from '../../../controller/config.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { testbed } from '../testbed.js';
import { apiKubectl, crsManifest, installCrd, testNamespace } from './kube.js';

const bed = testbed();
const k = apiKubectl(bed);
const manifests = path.join(bed.repoRoot, 'manifests');
const serviceAccount = 'system:serviceaccount:crs-system:crs-controller';
let namespace: Awaited<ReturnType<typeof testNamespace>>;
let ns: string;
const rbacObjects: [file: string, kind: string[]][] = [
  ['serviceaccount.yaml', ['serviceaccount', 'crs-controller', '-n', 'crs-system']],
  ['clusterrole.yaml', ['clusterrole', 'crs-controller']],
  ['clusterrolebinding.yaml', ['clusterrolebinding', 'crs-controller']],
];
const createdHere: string[][] = [];

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** What the agent does, and so exactly what its ClusterRole must grant. */
const expectedRules: PolicyRule[] = [
  { apiGroups: ['checkpoint.dev'], resources: ['checkpointreplicasets'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: ['checkpoint.dev'], resources: ['checkpointreplicasets/status'], verbs: ['patch', 'update'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] },
  // EndpointSlices of served replicas (issue 15): created and deleted, never updated.
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'create', 'delete'] },
  // Secure metrics serving (issue 9): the agent asks the apiserver who a scraper's token is and whether it may get /metrics.
  { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
];

const ALL_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];

/** `kubectl auth can-i` arguments for a verb on "resource[/subresource]" in API group `group`. */
function canIArgs(verb: string, group: string, resource: string): string[] {
  const [base = '', sub] = resource.split('/');
  const qualified = group === '' ? base : `${base}.${group}`;
  const scope = base === 'nodes' ? [] : ['-n', ns];
  return ['auth', 'can-i', verb, qualified, ...(sub ? [`--subresource=${sub}`] : []), ...scope, '--as', serviceAccount];
}

async function canI(args: string[]): Promise<boolean> {
  const result = await k.run(args);
  const answer = result.stdout.trim();
  if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return answer === 'yes';
}

/** Runs `work` over `items`, a few at a time (the machine has two cores). */
async function inBatches<T, R>(items: T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += 4) results.push(...(await Promise.all(items.slice(i, i + 4).map(work))));
  return results;
}

beforeAll(async () => {
  await installCrd(bed);
  namespace = await testNamespace(bed, 'api-rbac');
  ns = namespace.name;
  // The base's namespace must exist before a server dry run of namespaced objects in it can pass
  // (a dry run creates nothing, so it cannot create the namespace for the objects after it). It stays:
  // the test bed has no namespace controller, so a deleted namespace would never finish deleting.
  await k.ok(['apply', '--server-side', '-f', path.join(manifests, 'namespace.yaml')]);
  for (const [file, kind] of rbacObjects) {
    // Remove afterwards only what this file created: someone else's install stays as it was.
    if ((await k.run(['get', ...kind])).code !== 0) createdHere.push(kind);
    await k.ok(['apply', '--server-side', '--force-conflicts', '--field-manager=crs-api-tests', '-f', path.join(manifests, file)]);
  }
});

afterAll(async () => {
  await namespace?.remove();
  for (const kind of createdHere.reverse()) await k.run(['delete', ...kind, '--ignore-not-found']);
});

describe('kubectl apply -k manifests/', () => {
  it('succeeds as a server dry run, for every object of the base', async () => {
    const result = await k.run(['apply', '-k', manifests, '--dry-run=server']);
    expect(result.code, result.stderr).toBe(0);
    for (const object of [
      'namespace/crs-system',
      'customresourcedefinition.apiextensions.k8s.io/checkpointreplicasets.checkpoint.dev',
      'serviceaccount/crs-controller',
      'clusterrole.rbac.authorization.k8s.io/crs-controller',
      'clusterrolebinding.rbac.authorization.k8s.io/crs-controller',
      'service/crs-controller-metrics',
      'daemonset.apps/crs-controller',
    ]) {
      expect(result.stdout).toMatch(new RegExp(`^${object.replace(/\./g, '\\.')} \\w+ \\(server dry run\\)$`, 'm'));
    }
  });

  it('includes the generated CRD unchanged (apart from the base labels)', async () => {
    const built = parseAllDocuments(await k.ok(['kustomize', manifests])).map((d) => d.toJS() as Record<string, unknown>);
    const crd = built.find((o) => o.kind === 'CustomResourceDefinition') as { spec: unknown } | undefined;
    const committed = parse(readFileSync(path.join(bed.repoRoot, 'crds/checkpoint.dev_checkpointreplicasets.yaml'), 'utf8'));
    expect(crd?.spec).toEqual(committed.spec);
  });

  it('runs the agent with the node name from the downward API and the Docker socket and data root of the host', async () => {
    const built = parseAllDocuments(await k.ok(['kustomize', manifests])).map((d) => d.toJS());
    const ds = built.find((o: { kind: string }) => o.kind === 'DaemonSet');
    const pod = ds.spec.template.spec;
    const agent = pod.containers[0];
    expect(agent.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
    const mounts = Object.fromEntries(agent.volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]));
    const hostPaths = Object.fromEntries(
      pod.volumes.filter((v: { hostPath?: unknown }) => v.hostPath).map((v: { name: string; hostPath: { path: string } }) => [v.name, v.hostPath.path]),
    );
    // The data root is mounted at the same path as on the host: Docker reports host paths.
    expect(hostPaths['docker-root']).toBe(mounts['docker-root']);
    expect(agent.env).toContainEqual({ name: 'DOCKER_ROOT', value: mounts['docker-root'] });
    expect(agent.env).toContainEqual({ name: 'DOCKER_SOCKET', value: mounts['docker-socket'] });
    expect(agent.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics', scheme: 'HTTPS' });
    expect(agent.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics', scheme: 'HTTPS' });
    expect(agent.ports).toContainEqual({ name: 'metrics', containerPort: 9464, protocol: 'TCP' });
    expect(agent.resources.requests).toBeDefined();
    expect(agent.resources.limits).toBeDefined();
    expect(agent.securityContext).toMatchObject({ privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(pod.serviceAccountName).toBe('crs-controller');

    // The agent accepts the DaemonSet's flags and environment (NODE_NAME as the downward API fills it).
    const env: Record<string, string> = { NODE_NAME: 'node-1' };
    for (const e of agent.env as { name: string; value?: string }[]) if (e.value !== undefined) env[e.name] = e.value;
    const config = parseConfig(agent.args, env);
    expect(config).toMatchObject({
      nodeName: 'node-1',
      dockerSocket: '/var/run/docker.sock',
      dockerRoot: '/var/lib/docker',
      checkpointRoot: mounts['checkpoint-root'],
      containerdTmp: mounts['containerd-tmp'],
      metricsPort: 9464,
      kubeconfig: undefined,
    });
  });
});

describe('the ClusterRole', () => {
  it('grants exactly the rules the agent needs', () => {
    const role = parse(readFileSync(path.join(manifests, 'clusterrole.yaml'), 'utf8')) as { rules: PolicyRule[] };
    expect(role.rules).toEqual(expectedRules);
  });

  it('kubectl auth can-i --as the ServiceAccount: yes to each verb granted, no to every other verb on those resources', async () => {
    const cases = expectedRules.flatMap((rule) =>
      rule.resources.flatMap((resource) => ALL_VERBS.map((verb) => ({ verb, resource, group: rule.apiGroups[0] ?? '', want: rule.verbs.includes(verb) }))),
    );
    const answers = await inBatches(cases, async (c) => ({
      ...c,
      got: await canI(canIArgs(c.verb, c.group, c.resource)),
    }));
    const wrong = answers.filter((a) => a.got !== a.want).map((a) => `${a.verb} ${a.resource}: got ${a.got ? 'yes' : 'no'}`);
    expect(wrong).toEqual([]);
    expect(answers.filter((a) => a.got)).toHaveLength(expectedRules.reduce((n, r) => n + r.verbs.length, 0));
  });

  it.each([
    ['get', 'secrets'],
    ['list', 'secrets'],
    ['get', 'pods'],
    ['create', 'pods'],
    ['create', 'pods/exec'],
    ['get', 'configmaps'],
    ['create', 'serviceaccounts/token'],
    ['create', 'events.events.k8s.io'],
    ['get', 'customresourcedefinitions.apiextensions.k8s.io'],
    ['create', 'leases.coordination.k8s.io'],
    ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
    ['impersonate', 'serviceaccounts'],
    ['*', '*'],
  ])('refuses %s %s', async (verb, resource) => {
    const [base = '', sub] = resource.split('/');
    const args = ['auth', 'can-i', verb, base, ...(sub ? [`--subresource=${sub}`] : []), '-n', ns, '--as', serviceAccount];
    expect(await canI(args)).toBe(false);
  });
});

describe('real requests with a token of the ServiceAccount', () => {
  let custom: CustomObjectsApi;
  let core: CoreV1Api;
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

  beforeAll(async () => {
    const token = (await k.ok(['create', 'token', 'crs-controller', '-n', 'crs-system', '--duration=10m'])).trim();
    const admin = new KubeConfig();
    admin.loadFromFile(bed.kubeconfig);
    const cluster = admin.getCurrentCluster();
    if (cluster === null) throw new Error(`${bed.kubeconfig} has no current cluster`);
    const asAgent = new KubeConfig();
    asAgent.loadFromOptions({
      clusters: [{ name: 'test-bed', server: cluster.server, caFile: cluster.caFile, skipTLSVerify: false }],
      users: [{ name: 'crs-controller', token }],
      contexts: [{ name: 'agent', cluster: 'test-bed', user: 'crs-controller' }],
      currentContext: 'agent',
    });
    custom = asAgent.makeApiClient(CustomObjectsApi);
    core = asAgent.makeApiClient(CoreV1Api);
    await k.ok(['apply', '-f', '-'], crsManifest('rbac', ns, { checkpoint: { container: 'app-template', name: 'warm' }, template: { image: 'i' } }));
  });

  const crs = () => ({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL });

  it('does everything the agent does', async () => {
    const list = (await custom.listNamespacedCustomObject(crs())) as { items: CheckpointReplicaSet[] };
    expect(list.items.map((i) => i.metadata.name)).toEqual(['rbac']);

    // get, then a JSON patch guarded by resourceVersion adds this node's finalizer and another removes
    // it, as controller/kube/finalizers.ts does.
    const current = (await custom.getNamespacedCustomObject({ ...crs(), name: 'rbac' })) as CheckpointReplicaSet;
    const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
    const added = (await custom.patchNamespacedCustomObject(
      {
        ...crs(),
        name: 'rbac',
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: current.metadata.resourceVersion },
          { op: 'add', path: '/metadata/finalizers', value: ['checkpoint.dev/cleanup-node-a'] },
        ],
      },
      jsonPatch,
    )) as CheckpointReplicaSet;
    expect(added.metadata.finalizers).toEqual(['checkpoint.dev/cleanup-node-a']);
    const removed = (await custom.patchNamespacedCustomObject(
      {
        ...crs(),
        name: 'rbac',
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: added.metadata.resourceVersion },
          { op: 'replace', path: '/metadata/finalizers', value: [] },
        ],
      },
      jsonPatch,
    )) as CheckpointReplicaSet;
    expect(removed.metadata.finalizers ?? []).toEqual([]);

    // status: replace through /status with the resourceVersion just read, as the status writer does.
    const replaced = (await custom.replaceNamespacedCustomObjectStatus({
      ...crs(),
      name: 'rbac',
      body: { ...removed, status: { replicas: 1, readyReplicas: 1, failedReplicas: 0 } },
    })) as CheckpointReplicaSet;
    expect(replaced.status?.readyReplicas).toBe(1);
    // status: server-side apply of this node's entry under its own field manager, as the writer does.
    const applied = (await custom.patchNamespacedCustomObjectStatus(
      {
        ...crs(),
        name: 'rbac',
        fieldManager: 'crs-agent/node-a',
        force: true,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'CheckpointReplicaSet',
          metadata: { name: 'rbac', namespace: ns },
          status: { nodes: [{ node: 'node-a', replicas: 1, readyReplicas: 1, restoringReplicas: 0, failedReplicas: 0 }] },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    )) as CheckpointReplicaSet;
    expect(applied.status?.nodes?.map((n) => n.node)).toEqual(['node-a']);

    // core/v1 Events: create, then patch the count as aggregation does.
    const event = await core.createNamespacedEvent({
      namespace: ns,
      body: {
        metadata: { name: `rbac.${Date.now().toString(16)}`, namespace: ns },
        involvedObject: { apiVersion: `${GROUP}/${VERSION}`, kind: 'CheckpointReplicaSet', name: 'rbac', namespace: ns, uid: current.metadata.uid },
        reason: 'RestoreStarted',
        message: 'RBAC test',
        type: 'Normal',
        count: 1,
        source: { component: 'crs-controller' },
      },
    });
    const bumped = await core.patchNamespacedEvent({ name: event.metadata?.name ?? '', namespace: ns, body: { count: 2 } }, merge);
    expect(bumped.count).toBe(2);

    // nodes: list (the agent's informer lists and watches its own Node by field selector).
    const nodes = await core.listNode({ fieldSelector: 'metadata.name=node-a' });
    expect(Array.isArray(nodes.items)).toBe(true);
  });

  it.each([
    ['list secrets', () => core.listNamespacedSecret({ namespace: ns })],
    ['list pods', () => core.listNamespacedPod({ namespace: ns })],
    ['read a configmap', () => core.readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace: ns })],
    ['delete a CheckpointReplicaSet', () => custom.deleteNamespacedCustomObject({ ...crs(), name: 'rbac' })],
    [
      'create a CheckpointReplicaSet',
      () =>
        custom.createNamespacedCustomObject({
          ...crs(),
          body: JSON.parse(crsManifest('sneaky', ns, { checkpoint: { path: '/x' }, template: { image: 'i' } })),
        }),
    ],
    ['list events', () => core.listNamespacedEvent({ namespace: ns })],
    [
      'update a CheckpointReplicaSet (only patch is granted)',
      () =>
        custom.replaceNamespacedCustomObject({
          ...crs(),
          name: 'rbac',
          body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'CheckpointReplicaSet', metadata: { name: 'rbac', namespace: ns } },
        }),
    ],
    ['read one Node by name (only list/watch are granted)', () => core.readNode({ name: 'node-a' })],
  ])('is refused: %s (403)', async (_what, request) => {
    const error = await request().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ApiException);
    expect((error as ApiException<unknown>).code).toBe(403);
  });
});
