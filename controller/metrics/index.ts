// The metrics module's runtime API, for controller/main.ts. (Build-time generators, generate.ts and
// prometheus-rule.ts, are deliberately not exported: they use dev dependencies.)
export { createMetrics, type CrsMetrics, type CreateMetricsOptions, type NamedResource, type ReplicaCounts, type RestoreOutcome } from './metrics.js';
export { observeEngine, recordEngineEvent, DEFAULT_HEADROOM_INTERVAL_MS, type EngineObservation, type ObserveEngineOptions } from './engine-adapter.js';
export { startMetricsServer, type MetricsGuard, type MetricsServer, type MetricsServerOptions, type Probe, type ProbeResult } from './server.js';
export { selfSignedCertificate } from './self-signed.js';
export { parseListenAddress, formatListenAddress, DEFAULT_METRICS_ADDRESS, type ListenAddress } from './listen-address.js';
export { MetricsError, type MetricsErrorCode } from './errors.js';
export { CATALOG, FAILURE_REASONS, RECONCILE_RESULTS, type ReconcileResult } from './catalog.js';
