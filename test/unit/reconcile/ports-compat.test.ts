// The metrics module implements the reconciler's metrics port structurally. A type-level check:
// `npx tsc -p tsconfig.json --noEmit` fails the moment one side changes a signature so that
// agent.ts could no longer pass one as the other. (The kube classes implement the shared ports in
// controller/vocabulary.ts with `implements`, so tsc checks them where they are declared.)
import { describe, expectTypeOf, it } from 'vitest';
import type { CrsMetrics } from '../../../controller/metrics/metrics.js';
import type { ReconcileMetricsPort } from '../../../controller/reconcile/ports.js';

describe('ports are implemented by the metrics module', () => {
  it('CrsMetrics fits the metrics port', () => {
    expectTypeOf<CrsMetrics>().toExtend<ReconcileMetricsPort>();
  });
});
