// The kube layer and the metrics module implement the reconciler's ports structurally. These are
// type-level checks: `npx tsc -p tsconfig.json --noEmit` fails the moment one side changes a
// signature so that main.ts could no longer pass one as the other.
import { describe, expectTypeOf, it } from 'vitest';
import type { EventRecorder, FinalizerManager, StatusReporter } from '../../../controller/kube/ports.js';
import type { CrsMetrics } from '../../../controller/metrics/metrics.js';
import type { EventsPort, FinalizerPort, ReconcileMetricsPort, StatusPort } from '../../../controller/reconcile/ports.js';

describe('ports are implemented by the kube and metrics modules', () => {
  it('kube StatusReporter / EventRecorder / FinalizerManager fit the status / events / finalizer ports', () => {
    expectTypeOf<StatusReporter>().toExtend<StatusPort>();
    expectTypeOf<EventRecorder>().toExtend<EventsPort>();
    expectTypeOf<FinalizerManager>().toExtend<FinalizerPort>();
  });

  it('CrsMetrics fits the metrics port', () => {
    expectTypeOf<CrsMetrics>().toExtend<ReconcileMetricsPort>();
  });
});
