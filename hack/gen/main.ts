// Regenerates every derived file in the repository:
//   from controller/api/schema.ts (the API's single source of truth, ./api-files.ts):
//     crds/checkpoint.dev_checkpointreplicasets.yaml, controller/api/types.ts, docs/api.md
//   from the registry createMetrics() builds and manifests/monitoring/alerts.rules.yaml (./metrics-files.ts):
//     docs/metrics.md, manifests/monitoring/prometheusrule.yaml
// Run: npm run gen        (writes the files)
//      npm run gen:check  (writes nothing; exits 1 and names each stale file)
import path from 'node:path';
import { generatedApiFiles } from './api-files.js';
import { generatedMetricsFiles } from './metrics-files.js';
import { writeOrCheck } from './write-or-check.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const check = process.argv.includes('--check');
const stale = writeOrCheck(repoRoot, [...generatedApiFiles(), ...generatedMetricsFiles(repoRoot)], check);
if (check && stale > 0) console.error('run `npm run gen` and commit the result');
// The metrics registry's default collectors keep timers alive; this is a one-shot script.
process.exit(check && stale > 0 ? 1 : 0);
