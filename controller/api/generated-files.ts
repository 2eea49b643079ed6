// The files derived from ./schema.ts, with their paths relative to the repository root. One list for
// hack/gen-api.ts (which writes them) and test/unit/api/generated.test.ts (which checks they are current).
import { renderCrdYaml } from './crd.js';
import { renderTypes } from './typegen.js';

export interface GeneratedFile {
  path: string;
  content: string;
}

export const CRD_FILE = 'crds/checkpoint.dev_checkpointreplicasets.yaml';
export const TYPES_FILE = 'controller/api/types.ts';

export function generatedApiFiles(): GeneratedFile[] {
  return [
    { path: CRD_FILE, content: renderCrdYaml() },
    { path: TYPES_FILE, content: renderTypes() },
  ];
}
