// Regenerates everything derived from controller/api/schema.ts (the API's single source of truth):
//   crds/checkpoint.dev_checkpointreplicasets.yaml  the CRD
//   controller/api/types.ts                          the TypeScript types
//   docs/api.md                                      the field reference
// Run: npx tsx hack/gen-api.ts        (writes the files)
//      npx tsx hack/gen-api.ts --check (writes nothing; exits 1 and names each stale file)
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generatedApiFiles } from '../controller/api/generated-files.js';

const repoRoot = path.resolve(import.meta.dirname, '..');
const check = process.argv.includes('--check');
let stale = 0;
for (const file of generatedApiFiles()) {
  const target = path.join(repoRoot, file.path);
  let current: string | undefined;
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === file.content) continue;
  if (check) {
    console.error(`stale: ${file.path} differs from what controller/api/schema.ts generates`);
    stale++;
  } else {
    writeFileSync(target, file.content);
    console.log(`wrote ${file.path}`);
  }
}
if (stale > 0) {
  console.error('run `npx tsx hack/gen-api.ts` and commit the result');
  process.exit(1);
}
