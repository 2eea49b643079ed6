// The metrics module's runtime API, for controller/agent.ts. (The build-time generators live in
// hack/gen/: they use dev dependencies.)
export { createMetrics, type CrsMetrics } from './metrics.js';
export { observeEngine } from './engine-adapter.js';
export { startMetricsServer, type MetricsServer, type MetricsServerOptions } from './server.js';
export { selfSignedCertificate } from './self-signed.js';
