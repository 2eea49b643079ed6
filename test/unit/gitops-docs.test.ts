// README's Flux snippet is the tested example file's, word for word (the file is what
// test/integration/gitops/argocd-health.test.ts and the e2e evaluate with Flux's own CEL code).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

describe('README GitOps snippets', () => {
  it('the healthCheckExprs block is the one in manifests/flux/kustomization-cel.yaml', () => {
    const example = read('manifests/flux/kustomization-cel.yaml');
    const block = example.slice(example.indexOf('  healthCheckExprs:'));
    expect(block.split('\n').length).toBeGreaterThan(4);
    expect(read('README.md')).toContain(block.trimEnd());
  });

  it('the wait example says wait: true', () => {
    expect(read('manifests/flux/kustomization-wait.yaml')).toMatch(/^ {2}wait: true$/m);
  });
});
