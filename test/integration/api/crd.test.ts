// The CRD against the real apiserver, driven with kubectl's everyday verbs: install, the example,
// defaults, printer columns, scale, the status subresource (and its list-map per node), kubectl wait.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCrd } from '../../../hack/gen/crd.js';
import { CRD_NAME } from '../../../controller/api/schema.js';
import type { CheckpointReplicaSet } from '../../../controller/api/types.js';
import { testbed } from '../testbed.js';
import { apiKubectl, crsManifest, installCrd, startKubectl, testNamespace } from './kube.js';

const bed = testbed();
const k = apiKubectl(bed);
let namespace: Awaited<ReturnType<typeof testNamespace>>;
let ns: string;

const minimalSpec = { checkpoint: { container: 'app-template', name: 'warm' }, template: { image: 'crs-sample-app:latest' } };

async function get(name: string): Promise<CheckpointReplicaSet> {
  return k.json<CheckpointReplicaSet>(['get', 'crs', name, '-n', ns]);
}

async function create(name: string, spec: unknown = minimalSpec): Promise<CheckpointReplicaSet> {
  await k.ok(['apply', '-f', '-'], crsManifest(name, ns, spec));
  return get(name);
}

/** Writes status the way the controller does: through the /status subresource. */
async function patchStatus(name: string, status: unknown): Promise<void> {
  await k.ok(['patch', 'crs', name, '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
}

// As the agent writes it: with observedGeneration. Without it, kubectl wait falls back to
// status.observedGeneration, which stays at its default 0 until an agent has observed the object.
function readyCondition(status: 'True' | 'False', reason: string) {
  return { type: 'Ready', status, reason, message: `${reason} for the test`, lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 };
}

beforeAll(async () => {
  await installCrd(bed);
  namespace = await testNamespace(bed, 'api-crd');
  ns = namespace.name;
});

afterAll(async () => {
  await namespace?.remove();
});

describe('the CRD', () => {
  it('is Established with its names accepted, and stores the schema as generated', async () => {
    const crd = await k.json<{
      spec: { versions: { schema: unknown; subresources: unknown; additionalPrinterColumns: unknown }[] };
      status: { conditions: { type: string; status: string }[] };
    }>(['get', 'crd', CRD_NAME]);
    const conditions = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
    expect(conditions).toMatchObject({ Established: 'True', NamesAccepted: 'True' });
    const generated = (buildCrd() as { spec: { versions: typeof crd.spec.versions } }).spec.versions[0];
    expect(crd.spec.versions[0]?.schema).toEqual(generated?.schema);
    expect(crd.spec.versions[0]?.subresources).toEqual(generated?.subresources);
  });

  it('answers to the short name crs and kubectl explain shows the schema descriptions', async () => {
    const explained = await k.ok(['explain', 'crs.spec.restore.maxConcurrent']);
    expect(explained).toContain('Restores in flight at once on one node for this resource, 1..10. Default 10.');
  });
});

describe('the example manifest', () => {
  it('applies with kubectl apply -f and asks for 45 replicas of checkpoint warm, 10 at a time', async () => {
    const file = path.join(bed.repoRoot, 'manifests/examples/replicaset.yaml');
    const out = await k.ok(['apply', '-n', ns, '-f', file]);
    expect(out).toMatch(/checkpointreplicaset\.checkpoint\.dev\/\S+ created/);
    const name = /checkpointreplicaset\.checkpoint\.dev\/(\S+) created/.exec(out)?.[1] ?? '';
    const stored = await get(name);
    expect(stored.spec.replicas).toBe(45);
    expect(stored.spec.checkpoint).toEqual({ container: 'app-template', name: 'warm' });
    expect(stored.spec.restore.maxConcurrent).toBe(10);
  });
});

describe('defaults', () => {
  it('are filled in by the apiserver', async () => {
    const stored = await create('defaults');
    expect(stored.spec).toEqual({
      ...minimalSpec,
      replicas: 1,
      paused: false,
      restore: { maxConcurrent: 10, timeoutSeconds: 120, maxAttempts: 5, fallback: 'None' },
    });
  });

  it('fill only what is missing inside restore', async () => {
    const stored = await create('partial-restore', { ...minimalSpec, restore: { maxConcurrent: 3 } });
    expect(stored.spec.restore).toEqual({ maxConcurrent: 3, timeoutSeconds: 120, maxAttempts: 5, fallback: 'None' });
  });
});

describe('kubectl get crs', () => {
  it('shows Desired, Ready, Restoring, Failed, the Ready reason and Age', async () => {
    await create('columns', { ...minimalSpec, replicas: 45 });
    await patchStatus('columns', {
      replicas: 6,
      readyReplicas: 3,
      restoringReplicas: 2,
      failedReplicas: 1,
      conditions: [readyCondition('False', 'Restoring')],
    });
    const out = await k.ok(['get', 'crs', 'columns', '-n', ns]);
    const [header, row] = out
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/));
    expect(header).toEqual(['NAME', 'DESIRED', 'READY', 'RESTORING', 'FAILED', 'REASON', 'AGE']);
    expect(row?.slice(0, 6)).toEqual(['columns', '45', '3', '2', '1', 'Restoring']);
    expect(row?.[6]).toMatch(/^\d+(s|m)/);
  });

  it('lists the resource under its plural and full names too', async () => {
    const full = await k.ok(['get', 'checkpointreplicasets.checkpoint.dev', 'columns', '-n', ns, '-o', 'name']);
    expect(full.trim()).toBe('checkpointreplicaset.checkpoint.dev/columns');
  });
});

describe('the scale subresource', () => {
  it('kubectl scale changes spec.replicas, and scale reports the status selector', async () => {
    await create('scaled', { ...minimalSpec, replicas: 2 });
    await patchStatus('scaled', { replicas: 2, selector: 'checkpoint.dev/owner-name=scaled' });
    const out = await k.ok(['scale', 'crs/scaled', '-n', ns, '--replicas=7']);
    expect(out).toContain('scaled');
    expect((await get('scaled')).spec.replicas).toBe(7);
    const scale = await k.json<{ spec: { replicas: number }; status: { replicas: number; selector: string } }>([
      'get',
      'crs',
      'scaled',
      '-n',
      ns,
      '--subresource=scale',
    ]);
    expect(scale.spec.replicas).toBe(7);
    expect(scale.status).toEqual({ replicas: 2, selector: 'checkpoint.dev/owner-name=scaled' });
  });

  it('kubectl scale to a negative count is refused', async () => {
    const result = await k.run(['scale', 'crs/scaled', '-n', ns, '--replicas=-1']);
    expect(result.code).not.toBe(0);
    expect((await get('scaled')).spec.replicas).toBe(7);
  });
});

describe('the status subresource', () => {
  it('ignores status written through the main resource', async () => {
    await create('status-main');
    await k.ok(['patch', 'crs', 'status-main', '-n', ns, '--type=merge', '-p', JSON.stringify({ status: { replicas: 99 } })]);
    // Only the schema's default is there (status.observedGeneration 0: not observed yet).
    expect((await get('status-main')).status).toEqual({ observedGeneration: 0 });
  });

  it('keeps status written through /status, and ignores spec written there', async () => {
    await create('status-sub', { ...minimalSpec, replicas: 4 });
    const before = await get('status-sub');
    await k.ok([
      'patch',
      'crs',
      'status-sub',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { replicas: 40 }, status: { observedGeneration: 1, replicas: 4, readyReplicas: 4 } }),
    ]);
    const after = await get('status-sub');
    expect(after.status).toMatchObject({ observedGeneration: 1, replicas: 4, readyReplicas: 4 });
    expect(after.spec.replicas).toBe(4);
    expect(after.metadata.generation).toBe(before.metadata.generation);
  });

  it('lets two agents apply their own status.nodes entries without clobbering each other', async () => {
    await create('two-nodes');
    const applyNode = (node: string, ready: number) =>
      k.ok(
        ['apply', '--server-side', '--subresource=status', `--field-manager=crs-agent-${node}`, '-f', '-'],
        JSON.stringify({
          apiVersion: 'checkpoint.dev/v1alpha1',
          kind: 'CheckpointReplicaSet',
          metadata: { name: 'two-nodes', namespace: ns },
          status: { nodes: [{ node, replicas: 1, readyReplicas: ready, restoringReplicas: 1 - ready, failedReplicas: 0 }] },
        }),
      );
    await applyNode('node-a', 0);
    await applyNode('node-b', 1);
    await applyNode('node-a', 1); // node-a's second write must leave node-b's entry alone
    const nodes = (await get('two-nodes')).status?.nodes ?? [];
    expect(nodes.map((n) => [n.node, n.readyReplicas]).sort()).toEqual([
      ['node-a', 1],
      ['node-b', 1],
    ]);
  });

  it('refuses a status with an unknown condition type or a bad count', async () => {
    await create('bad-status');
    const badType = await k.run([
      'patch',
      'crs',
      'bad-status',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { conditions: [{ ...readyCondition('True', 'X'), type: 'Happy' }] } }),
    ]);
    expect(badType.stderr).toContain('status.conditions[0].type: Unsupported value: "Happy"');
    const badCount = await k.run([
      'patch',
      'crs',
      'bad-status',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { readyReplicas: -2 } }),
    ]);
    expect(badCount.stderr).toContain('status.readyReplicas: Invalid value: -2');
  });
});

describe('kubectl wait --for=condition=Ready', () => {
  it('times out while Ready is False', async () => {
    await create('waited');
    await patchStatus('waited', { conditions: [readyCondition('False', 'Restoring')] });
    const result = await k.run(['wait', '--for=condition=Ready', 'crs/waited', '-n', ns, '--timeout=1s']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('timed out');
  });

  it('returns once the status says Ready', async () => {
    const wait = startKubectl(bed, ['wait', '--for=condition=Ready', 'crs/waited', '-n', ns, '--timeout=120s']);
    try {
      await patchStatus('waited', { conditions: [readyCondition('True', 'AllReplicasReady')] });
      const result = await wait.exited;
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('condition met');
    } finally {
      wait.kill();
    }
  });
});
