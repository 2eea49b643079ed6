// Structural properties of the schema that the apiserver would otherwise report one at a time, and
// the rule that every CEL message names the field it is about.
import { describe, expect, it } from 'vitest';
import { buildCrd, openApiSchema } from '../../../hack/gen/crd.js';
import { checkpointReplicaSetSchema, type SchemaNode } from '../../../controller/api/schema.js';

interface Visited {
  path: string;
  node: SchemaNode;
}

/** Every node with its field path as the apiserver prints it (list items as `[]`). */
function walk(node: SchemaNode, path: string, out: Visited[] = []): Visited[] {
  out.push({ path, node });
  for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, path ? `${path}.${name}` : name, out);
  if (node.items) walk(node.items, `${path}[]`, out);
  if (node.additionalProperties) walk(node.additionalProperties, `${path}[*]`, out);
  return out;
}

const nodes = walk(checkpointReplicaSetSchema, '');

describe('the CheckpointReplicaSet schema', () => {
  it('is structural: every node has a type', () => {
    const untyped = nodes.filter((v) => v.node.type === undefined).map((v) => v.path);
    expect(untyped).toEqual([]);
  });

  it('every CEL message names the field it sits on', () => {
    const rules = nodes.flatMap((v) => (v.node['x-kubernetes-validations'] ?? []).map((r) => ({ ...r, at: v.path })));
    expect(rules.length).toBeGreaterThanOrEqual(15);
    for (const rule of rules) {
      expect(rule.message, `rule ${rule.rule} at ${rule.at}`).toContain(rule.at);
    }
  });

  it('list-map keys are required or defaulted in their items', () => {
    const listMaps = nodes.filter((v) => v.node['x-kubernetes-list-type'] === 'map');
    expect(listMaps.map((v) => v.path).sort()).toEqual(
      ['spec.template.env', 'spec.template.ports', 'status.conditions', 'status.nodes', 'status.nodes[].conditions'].sort(),
    );
    for (const { node, path } of listMaps) {
      for (const key of node['x-kubernetes-list-map-keys'] ?? []) {
        const item = node.items;
        const keyed = item?.required?.includes(key) === true || item?.properties?.[key]?.default !== undefined;
        expect(keyed, `${path} key ${key}`).toBe(true);
      }
    }
  });

  it('has the defaults issue 3 asks for', () => {
    const spec = checkpointReplicaSetSchema.properties?.spec;
    expect(spec?.properties?.replicas?.default).toBe(1);
    expect(spec?.properties?.paused?.default).toBe(false);
    const restore = spec?.properties?.restore;
    expect(restore?.default).toEqual({});
    expect(restore?.properties?.maxConcurrent?.default).toBe(10);
    expect(restore?.properties?.timeoutSeconds?.default).toBe(120);
    expect(restore?.properties?.maxAttempts?.default).toBe(5);
    expect(restore?.properties?.fallback?.default).toBe('None');
    expect(restore?.properties?.fallback?.enum).toEqual(['None', 'ColdStart']);
  });

  it('declares each unsafe template field only to reject it, and leaves it out of the types', () => {
    const template = checkpointReplicaSetSchema.properties?.spec?.properties?.template;
    const rules = template?.['x-kubernetes-validations'] ?? [];
    for (const field of ['privileged', 'hostNetwork', 'hostPID', 'capabilities', 'volumes']) {
      expect(template?.properties?.[field]?.['x-ts-omit'], field).toBe(true);
      const rule = rules.find((r) => r.fieldPath === `.${field}`);
      expect(rule?.message, field).toMatch(new RegExp(`^spec\\.template\\.${field} is not supported in v1alpha1: `));
      expect(rule?.reason).toBe('FieldValueForbidden');
    }
  });
});

describe('the CRD built from it', () => {
  it('carries no TypeScript-only keys', () => {
    expect(JSON.stringify(openApiSchema())).not.toMatch(/"x-ts-/);
    expect(JSON.stringify(buildCrd())).not.toMatch(/"x-ts-/);
  });

  it('has status and scale subresources wired to replicas and selector', () => {
    const version = (buildCrd() as { spec: { versions: Record<string, unknown>[] } }).spec.versions[0];
    expect(version?.subresources).toEqual({
      status: {},
      scale: {
        specReplicasPath: '.spec.replicas',
        statusReplicasPath: '.status.replicas',
        labelSelectorPath: '.status.selector',
      },
    });
    const columns = (version?.additionalPrinterColumns as { name: string; jsonPath: string }[]).map((c) => [c.name, c.jsonPath]);
    expect(columns).toEqual([
      ['Desired', '.spec.replicas'],
      ['Ready', '.status.readyReplicas'],
      ['Restoring', '.status.restoringReplicas'],
      ['Failed', '.status.failedReplicas'],
      ['Reason', '.status.conditions[?(@.type=="Ready")].reason'],
      ['Age', '.metadata.creationTimestamp'],
      ['Nodes', '.status.nodeCount'],
      ['Container', '.spec.checkpoint.container'],
      ['Checkpoint', '.spec.checkpoint.name'],
      ['Path', '.spec.checkpoint.path'],
      ['Image', '.spec.template.image'],
    ]);
  });
});
