// Bad specs are rejected at `kubectl apply` by the real apiserver, each with a message that names
// the field and says why; nothing of a rejected spec is stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testbed } from '../testbed.js';
import { apiKubectl, crsManifest, installCrd, testNamespace } from './kube.js';

const bed = testbed();
const k = apiKubectl(bed);
let namespace: Awaited<ReturnType<typeof testNamespace>>;

const source = { container: 'app-template', name: 'warm' };
const image = 'crs-sample-app:latest';

interface BadSpec {
  title: string;
  spec: unknown;
  /** Every fragment must appear in kubectl's error output: the field path, then the reason. */
  expect: string[];
}

const badSpecs: BadSpec[] = [
  // Serving (issue 15).
  {
    title: 'a port out of range',
    spec: { checkpoint: source, template: { image, ports: [{ containerPort: 70000 }] } },
    expect: ['spec.template.ports[0].containerPort: Invalid value', 'must be between 1 and 65535'],
  },
  {
    title: 'an httpGet probe on a port that is not published',
    spec: { checkpoint: source, template: { image, ports: [{ containerPort: 8080 }], readinessProbe: { httpGet: { port: 9090 } } } },
    expect: ['spec.template.readinessProbe.httpGet.port: Invalid value', 'must be a TCP containerPort listed in spec.template.ports'],
  },
  {
    title: 'a probe with both exec and httpGet',
    spec: {
      checkpoint: source,
      template: { image, ports: [{ containerPort: 8080 }], readinessProbe: { exec: { command: ['true'] }, httpGet: { port: 8080 } } },
    },
    expect: ['spec.template.readinessProbe: Invalid value', 'must set exactly one of exec or httpGet'],
  },
  {
    title: 'a post-restore hook without a program',
    spec: { checkpoint: source, template: { image, postRestore: { exec: { command: [''] } } } },
    expect: ['spec.template.postRestore.exec.command: Invalid value', 'must name a program'],
  },
  {
    title: 'a serviceName that is no Service name',
    spec: { checkpoint: source, template: { image }, serviceName: 'Web_1' },
    expect: ['spec.serviceName: Invalid value', 'must be a Service name'],
  },
  {
    title: 'no spec at all',
    spec: undefined,
    expect: ['spec: Required value'],
  },
  {
    title: 'both checkpoint sources',
    spec: { checkpoint: { ...source, path: '/var/lib/crs-checkpoints/warm' }, template: { image } },
    expect: ['spec.checkpoint.path: Forbidden', 'exactly one source: either container and name, or path, not both'],
  },
  {
    title: 'no checkpoint source',
    spec: { checkpoint: {}, template: { image } },
    expect: ['spec.checkpoint: Required value', 'must name a source: container and name, path, or bootstrap'],
  },
  {
    title: 'bootstrap and a container source',
    spec: { checkpoint: { ...source, bootstrap: {} }, template: { image } },
    expect: ['spec.checkpoint.bootstrap: Forbidden', 'spec.checkpoint.bootstrap excludes container, name and path'],
  },
  {
    title: 'bootstrap and a path source',
    spec: { checkpoint: { path: '/var/lib/crs-checkpoints/warm', bootstrap: { warmupSeconds: 5 } }, template: { image } },
    expect: ['spec.checkpoint.bootstrap: Forbidden', 'name exactly one source'],
  },
  {
    title: 'a negative bootstrap warm-up',
    spec: { checkpoint: { bootstrap: { warmupSeconds: -1 } }, template: { image } },
    expect: ['spec.checkpoint.bootstrap.warmupSeconds: Invalid value', 'must be between 0 and 3600'],
  },
  {
    title: 'container without a checkpoint name',
    spec: { checkpoint: { container: 'app-template' }, template: { image } },
    expect: ['spec.checkpoint.name: Required value', 'is required with spec.checkpoint.container'],
  },
  {
    title: 'relative checkpoint path',
    spec: { checkpoint: { path: 'checkpoints/warm' }, template: { image } },
    expect: ['spec.checkpoint.path: Invalid value', 'must be an absolute path'],
  },
  {
    title: 'checkpoint path escaping with ..',
    spec: { checkpoint: { path: '/var/lib/crs-checkpoints/../../etc' }, template: { image } },
    expect: ['spec.checkpoint.path: Invalid value', "must not contain '..' segments"],
  },
  {
    title: 'container name with a slash',
    spec: { checkpoint: { container: '../x', name: 'warm' }, template: { image } },
    expect: ['spec.checkpoint.container: Invalid value', 'must be a Docker container name or id'],
  },
  {
    title: 'maxConcurrent above 10',
    spec: { checkpoint: source, template: { image }, restore: { maxConcurrent: 11 } },
    expect: ['spec.restore.maxConcurrent: Invalid value', 'must be between 1 and 10'],
  },
  {
    title: 'maxConcurrent 0',
    spec: { checkpoint: source, template: { image }, restore: { maxConcurrent: 0 } },
    expect: ['spec.restore.maxConcurrent: Invalid value', 'must be between 1 and 10'],
  },
  {
    title: 'timeoutSeconds 0',
    spec: { checkpoint: source, template: { image }, restore: { timeoutSeconds: 0 } },
    expect: ['spec.restore.timeoutSeconds: Invalid value', 'must be between 1 and 86400'],
  },
  {
    title: 'maxAttempts 0',
    spec: { checkpoint: source, template: { image }, restore: { maxAttempts: 0 } },
    expect: ['spec.restore.maxAttempts: Invalid value', 'must be between 1 and 100'],
  },
  {
    title: 'unknown fallback',
    spec: { checkpoint: source, template: { image }, restore: { fallback: 'Sometimes' } },
    expect: ['spec.restore.fallback: Unsupported value: "Sometimes"', 'supported values: "None", "ColdStart"'],
  },
  {
    title: 'negative replicas',
    spec: { replicas: -1, checkpoint: source, template: { image } },
    expect: ['spec.replicas: Invalid value: -1', 'should be greater than or equal to 0'],
  },
  {
    title: 'negative stop grace',
    spec: { checkpoint: source, template: { image, stopGracePeriodSeconds: -1 } },
    expect: ['spec.template.stopGracePeriodSeconds: Invalid value: -1', 'should be greater than or equal to 0'],
  },
  {
    title: 'replicas as a word',
    spec: { replicas: 'three', checkpoint: source, template: { image } },
    expect: ['spec.replicas: Invalid value: "string"', 'must be of type integer'],
  },
  {
    title: 'missing image',
    spec: { checkpoint: source, template: {} },
    expect: ['spec.template.image: Required value'],
  },
  {
    title: 'empty image',
    spec: { checkpoint: source, template: { image: '' } },
    expect: ['spec.template.image: Invalid value', 'must be a non-empty image reference'],
  },
  {
    title: 'env name starting with a digit',
    spec: { checkpoint: source, template: { image, env: [{ name: '1BAD', value: 'x' }] } },
    expect: ['spec.template.env[0].name: Invalid value', 'must be a C identifier'],
  },
  {
    title: 'env name with =',
    spec: {
      checkpoint: source,
      template: {
        image,
        env: [
          { name: 'OK', value: '1' },
          { name: 'A=B', value: 'x' },
        ],
      },
    },
    expect: ['spec.template.env[1].name: Invalid value', 'must be a C identifier'],
  },
  {
    title: 'the same env name twice',
    spec: {
      checkpoint: source,
      template: {
        image,
        env: [
          { name: 'A', value: '1' },
          { name: 'A', value: '2' },
        ],
      },
    },
    expect: ['spec.template.env[1]: Duplicate value'],
  },
  {
    title: 'memory that is not a quantity',
    spec: { checkpoint: source, template: { image, resources: { limits: { memory: 'lots' } } } },
    expect: ['spec.template.resources.limits.memory: Invalid value', 'must be a Kubernetes quantity such as 512Mi'],
  },
  {
    title: 'negative cpu',
    spec: { checkpoint: source, template: { image, resources: { limits: { cpu: '-1' } } } },
    expect: ['spec.template.resources.limits.cpu: Invalid value', 'must be greater than zero'],
  },
  {
    title: 'relative workingDir',
    spec: { checkpoint: source, template: { image, workingDir: 'app' } },
    expect: ['spec.template.workingDir: Invalid value', 'must be an absolute path'],
  },
  {
    title: 'malformed user',
    spec: { checkpoint: source, template: { image, user: 'root; rm' } },
    expect: ['spec.template.user: Invalid value', 'must be user, uid, user:group or uid:gid'],
  },
  {
    title: "a label under the controller's prefix (ownership spoofing)",
    spec: { checkpoint: source, template: { image, labels: { 'checkpoint.dev/owner-uid': 'someone-else' } } },
    expect: ['spec.template.labels: Invalid value', 'must not use the prefix checkpoint.dev/'],
  },
  {
    title: 'privileged',
    spec: { checkpoint: source, template: { image, privileged: true } },
    expect: ['spec.template.privileged: Forbidden', 'spec.template.privileged is not supported in v1alpha1'],
  },
  {
    title: 'host network',
    spec: { checkpoint: source, template: { image, hostNetwork: true } },
    expect: ['spec.template.hostNetwork: Forbidden', 'is not supported in v1alpha1'],
  },
  {
    title: 'host PID namespace',
    spec: { checkpoint: source, template: { image, hostPID: true } },
    expect: ['spec.template.hostPID: Forbidden', 'is not supported in v1alpha1'],
  },
  {
    title: 'added capabilities',
    spec: { checkpoint: source, template: { image, capabilities: { add: ['SYS_ADMIN'] } } },
    expect: ['spec.template.capabilities: Forbidden', 'is not supported in v1alpha1'],
  },
  {
    title: 'host mounts',
    spec: { checkpoint: source, template: { image, volumes: [{ hostPath: { path: '/' } }] } },
    expect: ['spec.template.volumes: Forbidden', 'is not supported in v1alpha1'],
  },
  {
    title: 'an unknown template field (strict field validation)',
    spec: { checkpoint: source, template: { image, devices: ['/dev/kmsg'] } },
    expect: ['unknown field "spec.template.devices"'],
  },
  {
    title: 'a misspelt restore field (strict field validation)',
    spec: { checkpoint: source, template: { image }, restore: { maxConcurrency: 5 } },
    expect: ['unknown field "spec.restore.maxConcurrency"'],
  },
  {
    title: 'a node selector key that no node label can have',
    spec: { checkpoint: source, template: { image }, nodeSelector: { 'disk type': 'ssd' } },
    expect: ['spec.nodeSelector: Invalid value', 'keys must be Kubernetes label keys'],
  },
];

beforeAll(async () => {
  await installCrd(bed);
  namespace = await testNamespace(bed, 'api-validation');
});

afterAll(async () => {
  await namespace?.remove();
});

describe('kubectl apply rejects bad specs with a message naming the field', () => {
  it('has a table of at least 12 bad specs', () => {
    expect(badSpecs.length).toBeGreaterThanOrEqual(12);
  });

  it.each(badSpecs.map((b, i) => [b.title, b, i] as const))('%s', async (_title, bad, i) => {
    const name = `bad-${i}`;
    const result = await k.run(['apply', '-f', '-'], crsManifest(name, namespace.name, bad.spec));
    expect(result.code, result.stdout).not.toBe(0);
    for (const fragment of bad.expect) expect(result.stderr).toContain(fragment);
    const stored = await k.run(['get', 'crs', name, '-n', namespace.name]);
    expect(stored.stderr).toContain('NotFound');
  });

  it('accepts what is harmless or merely explicit: privileged false, empty label value, all fields set', async () => {
    const spec = {
      replicas: 0,
      checkpoint: { path: '/var/lib/crs-checkpoints/app/warm' },
      template: {
        image,
        command: ['/app'],
        args: ['--verbose'],
        env: [{ name: 'APP_MEMORY_MB', value: '64' }, { name: '_x1' }],
        workingDir: '/',
        user: '1000:1000',
        labels: { team: 'a', 'example.com/tier': '' },
        resources: { limits: { memory: '1.5Gi', cpu: '250m' } },
        privileged: false,
        hostNetwork: false,
        hostPID: false,
      },
      nodeSelector: { 'kubernetes.io/hostname': 'node-1', disk: '' },
      restore: { maxConcurrent: 1, timeoutSeconds: 86400, maxAttempts: 100, fallback: 'ColdStart' },
      paused: true,
    };
    await k.ok(['apply', '-f', '-'], crsManifest('good', namespace.name, spec));
    const stored = await k.json<{ spec: typeof spec }>(['get', 'crs', 'good', '-n', namespace.name]);
    expect(stored.spec).toEqual(spec);
  });
});
