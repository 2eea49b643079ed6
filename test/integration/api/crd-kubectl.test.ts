// The CRD as kubectl users meet it, with the real kubectl against the real apiserver: the usual ways
// to install it (server-side dry run: full validation and admission, nothing changed for the other
// tests sharing the bed), `kubectl get crs -o wide`, and a description on every field kubectl explain shows.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRD_NAME } from '../../../controller/api/schema.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);
const crds = path.join(bed.repoRoot, 'crds');
const namespace = `crd-kubectl-${Date.now().toString(36)}`;

beforeAll(async () => {
  await installCrd(bed);
  await k('create', 'namespace', namespace);
});
afterAll(async () => {
  await k('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
});

describe('installing the CRD from crds/', () => {
  it('kubectl apply -f crds/ applies the CRD and nothing else', async () => {
    const out = await k('apply', '-f', crds, '--dry-run=server', '-o', 'name');
    expect(out.trim().split('\n')).toEqual([`customresourcedefinition.apiextensions.k8s.io/${CRD_NAME}`]);
  });

  it('kubectl apply -k crds/ applies the same CRD', async () => {
    const out = await k('apply', '-k', crds, '--dry-run=server', '-o', 'name');
    expect(out.trim().split('\n')).toEqual([`customresourcedefinition.apiextensions.k8s.io/${CRD_NAME}`]);
  });

  it('every file kubectl apply -f reads in crds/ is a Kubernetes object (the Kustomization has no .yaml name)', () => {
    const read = readdirSync(crds).filter((f) => /\.(ya?ml|json)$/.test(f));
    expect(read).toEqual(['checkpoint.dev_checkpointreplicasets.yaml']);
    expect(readdirSync(crds)).toContain('Kustomization');
  });
});

describe('kubectl get and explain', () => {
  it('kubectl get crs -o wide shows nodes, checkpoint source and image; the default view does not', async () => {
    await k.apply(
      JSON.stringify({
        apiVersion: 'checkpoint.dev/v1alpha1',
        kind: 'CheckpointReplicaSet',
        metadata: { name: 'wide', namespace },
        spec: { replicas: 2, checkpoint: { container: 'app-template', name: 'warm' }, template: { image: 'crs-sample-app:latest' } },
      }),
    );
    const status = {
      nodeCount: 2,
      nodes: [
        { node: 'node-a', replicas: 2, readyReplicas: 2, restoringReplicas: 0, failedReplicas: 0 },
        { node: 'node-b', replicas: 0, readyReplicas: 0, restoringReplicas: 0, failedReplicas: 0 },
      ],
    };
    await k('-n', namespace, 'patch', 'crs', 'wide', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status }));
    const [header = '', row = ''] = (await k('-n', namespace, 'get', 'crs', 'wide', '-o', 'wide')).trimEnd().split('\n');
    const names = header.split(/\s+/);
    expect(names).toEqual(['NAME', 'DESIRED', 'READY', 'RESTORING', 'FAILED', 'REASON', 'AGE', 'NODES', 'CONTAINER', 'CHECKPOINT', 'PATH', 'IMAGE']);
    // Cells by the header's column positions (an empty cell prints as blanks).
    const starts = names.map((n) => header.indexOf(n));
    const cell = (name: string) => row.slice(starts[names.indexOf(name)], starts[names.indexOf(name) + 1]).trim();
    expect(['NODES', 'CONTAINER', 'CHECKPOINT', 'PATH', 'IMAGE'].map(cell)).toEqual(['2', 'app-template', 'warm', '', 'crs-sample-app:latest']);
    const narrow = (await k('-n', namespace, 'get', 'crs', 'wide')).split('\n')[0]!;
    expect(narrow).not.toContain('NODES');
  });

  it('every field kubectl explain shows has a description (the published OpenAPI, as kubectl reads it)', async () => {
    const doc = JSON.parse(await k('get', '--raw', '/openapi/v3/apis/checkpoint.dev/v1alpha1')) as {
      components: { schemas: Record<string, Schema> };
    };
    const root = doc.components.schemas['dev.checkpoint.v1alpha1.CheckpointReplicaSet'];
    expect(root).toBeDefined();
    const missing: string[] = [];
    const seen: string[] = [];
    const walk = (node: Schema, at: string) => {
      for (const [name, child] of Object.entries(node.properties ?? {})) {
        const field = at ? `${at}.${name}` : name;
        seen.push(field);
        if (!child.description?.trim()) missing.push(field);
        const inner = child.items ?? child;
        if (!inner.allOf) walk(inner, field); // metadata is a $ref to ObjectMeta, described upstream
      }
    };
    walk(root!, '');
    expect(seen).toContain('status.nodes.conditions.type');
    expect(missing).toEqual([]);
    expect(await k('explain', 'crs.status.conditions.type')).toContain('Stalled');
  });
});

interface Schema {
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  allOf?: unknown[];
}
