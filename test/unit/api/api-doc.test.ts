// Every field is described (kubectl explain shows it), docs/api.md lists every field, and
// `kubectl get crs -o wide` has its extra columns.
import { describe, expect, it } from 'vitest';
import { fields, renderApiDoc } from '../../../hack/gen/api-doc.js';
import { WIDE_COLUMNS, buildCrd } from '../../../hack/gen/crd.js';
import { checkpointReplicaSetSchema } from '../../../controller/api/schema.js';

const all = fields(checkpointReplicaSetSchema, '', []);

describe('API reference', () => {
  it('every field but metadata (the apiserver refuses one there) has a description', () => {
    expect(all.length).toBeGreaterThan(50);
    expect(all.filter((f) => !f.node.description?.trim()).map((f) => f.path)).toEqual(['metadata']);
  });

  it('docs/api.md has a row for every field, nested fields included', () => {
    const doc = renderApiDoc();
    for (const f of all) expect(doc).toContain(`| \`${f.path}\` |`);
    expect(all.map((f) => f.path)).toContain('spec.template.env[].name');
    expect(all.map((f) => f.path)).toContain('status.nodes[].conditions[].reason');
    expect(doc).toContain('one of `Ready`, `Reconciling`, `Stalled`, `Progressing`, `Degraded`');
  });

  it('-o wide adds nodes, checkpoint source and image (priority 1), after the default columns', () => {
    const columns = (buildCrd() as { spec: { versions: Array<{ additionalPrinterColumns: Array<{ name: string; priority?: number }> }> } }).spec.versions[0]!
      .additionalPrinterColumns;
    expect(columns.filter((c) => c.priority === 1).map((c) => c.name)).toEqual(['Nodes', 'Container', 'Checkpoint', 'Path', 'Image']);
    expect(WIDE_COLUMNS.every((c) => c.description.length > 0)).toBe(true);
  });
});
