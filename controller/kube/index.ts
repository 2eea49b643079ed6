// The kube layer assembled for one agent: informers feed the work queue, and the reconciler gets the
// status writer, event recorder and finalizer as its ports. agent.ts calls createKubeLayer, then
// start(handler) once the reconciler exists, and stop() on SIGTERM.

import type { KubeConfig, V1Node } from '@kubernetes/client-node';
import type { CheckpointReplicaSet } from '../api/types.js';
import { createCrsClient, type CrsClient } from './client.js';
import { type Clock } from './clock.js';
import { KubeEventRecorder, createEventSink } from './events.js';
import { NodeFinalizer } from './finalizers.js';
import { createCrsInformer, createNodeInformer, type ResilientInformer } from './informer.js';
import { noopLogger, type Logger } from './logger.js';
import { StatusWriter } from './status-writer.js';
import { keyOf } from '../vocabulary.js';
import { WorkQueue, type WorkHandler } from './workqueue.js';
import type { WorkQueueMetricsSink } from './workqueue-metrics.js';

export * from './api-error.js';
export * from './client.js';
export * from './events.js';
export * from './finalizers.js';
export * from './informer.js';
export * from './status-writer.js';
export * from './workqueue.js';
export interface KubeLayerOptions {
  /** This agent's node name (finalizer, status.nodes entry, Event source). */
  node: string;
  /** Watch one namespace only; all namespaces when absent. */
  namespace?: string;
  /** Parallel reconciles (each key still runs alone). Default 4. */
  workers?: number;
  resyncPeriodMs?: number;
  statusDebounceMs?: number;
  logger?: Logger;
  queueMetrics?: WorkQueueMetricsSink;
  clock?: Clock;
}

export interface KubeLayer {
  client: CrsClient;
  resources: ResilientInformer<CheckpointReplicaSet>;
  node: ResilientInformer<V1Node>;
  queue: WorkQueue;
  status: StatusWriter;
  events: KubeEventRecorder;
  finalizer: NodeFinalizer;
  /** Starts the informers and the queue's workers; resolves once both caches have synced. */
  start(handler: WorkHandler): Promise<void>;
  /** Both informers have delivered their first list (for /readyz). */
  hasSynced(): boolean;
  /** Stops watching, lets in-flight reconciles finish, flushes status and events. */
  stop(): Promise<void>;
}

export function createKubeLayer(kc: KubeConfig, options: KubeLayerOptions): KubeLayer {
  const logger = options.logger ?? noopLogger;
  const common = { logger, resyncPeriodMs: options.resyncPeriodMs, ...(options.clock ? { clock: options.clock } : {}) };
  const client = createCrsClient(kc);
  const resources = createCrsInformer(kc, { ...common, ...(options.namespace ? { namespace: options.namespace } : {}) });
  const node = createNodeInformer(kc, options.node, common);
  const queue = new WorkQueue({
    name: 'checkpointreplicasets',
    workers: options.workers ?? 4,
    logger,
    ...(options.queueMetrics ? { metrics: options.queueMetrics } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const status = new StatusWriter({
    client,
    node: options.node,
    logger,
    ...(options.statusDebounceMs !== undefined ? { debounceMs: options.statusDebounceMs } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const events = new KubeEventRecorder({ sink: createEventSink(kc), node: options.node, logger, ...(options.clock ? { clock: options.clock } : {}) });
  const finalizer = new NodeFinalizer({ client, node: options.node, logger, ...(options.clock ? { clock: options.clock } : {}) });

  const enqueue = (o: CheckpointReplicaSet) => queue.add(keyOf(o.metadata.namespace, o.metadata.name));
  resources.on({ add: enqueue, update: enqueue, delete: enqueue });
  // The node's labels decide which resources select it: any change re-examines every resource.
  const enqueueAll = () => {
    for (const o of resources.list()) enqueue(o);
  };
  node.on({ add: enqueueAll, update: (_n, cause) => cause === 'watch' && enqueueAll(), delete: enqueueAll });

  return {
    client,
    resources,
    node,
    queue,
    status,
    events,
    finalizer,
    async start(handler) {
      node.start();
      resources.start();
      await Promise.all([node.waitForSync(), resources.waitForSync()]);
      queue.start(handler);
    },
    hasSynced: () => resources.hasSynced() && node.hasSynced(),
    async stop() {
      await Promise.all([resources.stop(), node.stop()]);
      await queue.shutDown();
      await status.stop();
      await events.flush();
    },
  };
}
