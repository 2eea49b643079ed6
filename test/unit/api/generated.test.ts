// The committed CRD and types must be exactly what controller/api/schema.ts generates.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildCrd } from '../../../hack/gen/crd.js';
import { API_DOC_FILE, CRD_FILE, TYPES_FILE, generatedApiFiles } from '../../../hack/gen/api-files.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

describe('files generated from the schema', () => {
  for (const file of generatedApiFiles()) {
    it(`${file.path} is current (else run: npm run gen)`, () => {
      const committed = readFileSync(path.join(repoRoot, file.path), 'utf8');
      expect(committed).toBe(file.content);
    });
  }

  it('lists the CRD, the types and the API reference', () => {
    expect(generatedApiFiles().map((f) => f.path)).toEqual([CRD_FILE, TYPES_FILE, API_DOC_FILE]);
  });

  it('the committed CRD YAML parses back to the object buildCrd() makes', () => {
    const committed: unknown = parse(readFileSync(path.join(repoRoot, CRD_FILE), 'utf8'));
    expect(committed).toEqual(buildCrd());
  });
});
