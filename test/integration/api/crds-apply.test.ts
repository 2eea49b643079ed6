// The usual ways to install the CRD, with the real kubectl against the real apiserver (server-side
// dry run: full validation and admission, nothing changed for the other tests sharing the bed).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CRD_NAME } from '../../../controller/api/schema.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);
const crds = path.join(bed.repoRoot, 'crds');

beforeAll(async () => {
  await installCrd(bed);
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
