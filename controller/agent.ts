// Wires one agent together: watch -> queue -> reconciler (xstate machine per resource) -> engine,
// with status, Events and metrics on the side. main.ts only parses flags and handles signals.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import * as k8s from '@kubernetes/client-node';
import type { AgentConfig } from './config.js';
import { createDockerEngine, type DockerEngine } from './engine/docker-engine.js';
import { EngineError } from './engine/errors.js';
import { createKubeLayer, keyOf, splitKey } from './kube/index.js';
import type { Logger } from './log.js';
import { createMetrics, observeEngine, startMetricsServer, type MetricsServer } from './metrics/index.js';
import { selectsNode } from './reconcile/node-selection.js';
import { createReconciler } from './reconcile/runner.js';

export interface Agent {
  /** Resolves once the caches synced and the workers run. */
  readonly started: Promise<void>;
  stop(): Promise<void>;
}

const ENGINE_RETRY_MAX_MS = 30_000;
const SWEEP_INTERVAL_MS = 60_000;

export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export async function startAgent(config: AgentConfig, logger: Logger): Promise<Agent> {
  const kc = new k8s.KubeConfig();
  if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
  else kc.loadFromCluster();

  const metrics = createMetrics({ version: VERSION });
  let engine: DockerEngine | undefined;
  let stopping = false;
  const kube = createKubeLayer(kc, {
    node: config.nodeName,
    namespace: config.namespace,
    workers: config.workers,
    resyncPeriodMs: config.resyncSeconds * 1000,
    logger: logger.with({ component: 'kube' }),
    queueMetrics: metrics.workQueue,
  });
  const server: MetricsServer = await startMetricsServer({
    registry: metrics.registry,
    address: { host: config.metricsHost, port: config.metricsPort },
    ready: () => (engine !== undefined && kube.hasSynced() ? true : { ok: false, reason: engine ? 'caches not synced' : 'Docker engine not reached yet' }),
    health: () => true,
  });
  logger.info('metrics server listening', { address: `${config.metricsHost}:${config.metricsPort}` });

  // The engine may be down when the agent starts (a host booting, dockerd restarting): wait for it
  // with backoff instead of crash-looping; /readyz says why meanwhile.
  // A host without the checkpoint root simply has no path sources: refuse those, run the rest.
  const checkpointRoot = existsSync(config.checkpointRoot) ? config.checkpointRoot : undefined;
  if (!checkpointRoot) {
    logger.warn('checkpoint root does not exist; spec.checkpoint.path sources will be refused', { checkpointRoot: config.checkpointRoot });
  }
  const connectEngine = async (): Promise<DockerEngine> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await createDockerEngine({
          dockerSocket: config.dockerSocket,
          dockerRoot: config.dockerRoot,
          containerdTmp: config.containerdTmp,
          node: config.nodeName,
          concurrencyLimit: config.maxConcurrentRestores,
          ...(checkpointRoot ? { checkpointRoot } : {}),
        });
      } catch (err) {
        if (stopping) throw err;
        // Only an unreachable engine is worth waiting for; a bad data root or limit is a config error.
        if (!(err instanceof EngineError) || err.code !== 'EngineUnavailable') throw err;
        const delay = Math.min(ENGINE_RETRY_MAX_MS, 500 * 2 ** attempt);
        logger.warn('Docker engine not reachable; retrying', { socket: config.dockerSocket, retryInMs: delay, err });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };

  // Replaced once everything is wired; before that only the watches can be running.
  let shutdown = async (): Promise<void> => {
    await kube.stop();
  };

  const started = (async () => {
    engine = await connectEngine();
    const connected = engine;
    const observation = observeEngine(connected, metrics, config.nodeName, {
      onError: (err) => logger.warn('disk headroom poll failed', { err }),
    });
    const reconciler = createReconciler(
      {
        engine: connected,
        status: kube.status,
        events: kube.events,
        finalizer: kube.finalizer,
        logger: logger.with({ component: 'reconciler' }),
        metrics,
      },
      {
        node: config.nodeName,
        machine: { provenAfterMs: config.replicaProvenSeconds * 1000 },
        agentLimits: { ...(checkpointRoot ? { checkpointRoot } : {}), hostCpus: os.availableParallelism() },
        // No Node object (a host without kubelet) means no labels: only an empty selector matches.
        selectsNode: (resource) => selectsNode(resource, kube.node.get(config.nodeName)?.metadata?.labels),
      },
    );

    // ---- Engine events (issue 10): a replica that dies, is killed or removed by hand is noticed in
    // seconds. The owner's actor looks again at once; a resource without an actor yet is enqueued.
    // When the stream comes back after a break, everything is enqueued once (re-list): what happened
    // while it was down is seen. The periodic resync stays as the safety net.
    const stopWatch = connected.watchContainers((event) => {
      const told = reconciler.engineChanged(event);
      if (event.type === 'replica') {
        logger.debug('replica changed on the engine', { ...event.change, keys: told });
        if (told.length > 0) return;
        const owner = kube.resources.list().find((r) => r.metadata.uid === event.change.ownerUid);
        if (owner) kube.queue.add(keyOf(owner.metadata.namespace, owner.metadata.name));
        return;
      }
      if (event.type === 'lost') {
        logger.warn('Docker event stream lost; resubscribing', { reason: event.reason });
        return;
      }
      logger.info('Docker event stream resumed; re-listing every resource', { downSeconds: (event.at.getTime() - event.lostAt.getTime()) / 1000 });
      for (const r of kube.resources.list()) kube.queue.add(keyOf(r.metadata.namespace, r.metadata.name));
    });
    // ---- end of engine events

    // ---- Deletion and scale-down do not wait for a batch (issue 10): the queue holds a key while
    // its batch runs, so the watch also hands changes straight to a busy actor.
    kube.resources.on({
      update: (o) => reconciler.offer(o, keyOf(o.metadata.namespace, o.metadata.name)),
      delete: (o) => reconciler.offer(undefined, keyOf(o.metadata.namespace, o.metadata.name)),
    });

    const handler = async (key: string) => {
      const { namespace, name } = splitKey(key);
      const resource = kube.resources.get(name, namespace);
      if (!resource) metrics.forget({ namespace, name });
      const result = await reconciler.reconcile(resource, key);
      return result.requeueAfterMs !== undefined ? { requeueAfterMs: result.requeueAfterMs } : undefined;
    };
    await kube.start(handler);
    logger.info('caches synced; reconciling', { node: config.nodeName, namespace: config.namespace ?? '(all)' });

    // ---- A missing Node object (issue 10): resources with a nodeSelector are held, not emptied
    // (see reconcile/node-selection.ts); say so in a metric and a log line, both ways.
    let nodePresent = kube.node.get(config.nodeName) !== undefined;
    metrics.nodeObjectPresent(config.nodeName, nodePresent);
    if (!nodePresent) logger.warn('Node object not found: resources with a nodeSelector are held as they are', { node: config.nodeName });
    const noteNode = (present: boolean): void => {
      metrics.nodeObjectPresent(config.nodeName, present);
      if (present === nodePresent) return;
      nodePresent = present;
      if (present) logger.info('Node object is back: acting on nodeSelectors again', { node: config.nodeName });
      else logger.warn('Node object deleted: resources with a nodeSelector are held as they are until it is back', { node: config.nodeName });
    };
    kube.node.on({ add: () => noteNode(true), update: () => noteNode(true), delete: () => noteNode(false) });
    // ---- end of missing Node

    // Housekeeping: leaked checkpoint copies (containerd issue 10166) and containers of resources
    // deleted while no agent ran. Orphans are judged only when every namespace is watched: a
    // namespace-scoped agent cannot tell a foreign namespace's resource from a deleted one.
    const housekeeping = setInterval(() => {
      void (async () => {
        await connected.sweep().catch((err: unknown) => logger.warn('sweep failed', { err }));
        if (config.namespace === undefined && kube.hasSynced()) {
          const known = new Set(kube.resources.list().map((r) => r.metadata.uid));
          const collected = await reconciler.collectOrphans(known).catch((err: unknown) => {
            logger.warn('orphan collection failed', { err });
            return undefined;
          });
          if (collected?.removed) logger.info('removed orphaned replicas', { ...collected });
        }
      })();
    }, SWEEP_INTERVAL_MS);
    housekeeping.unref();

    shutdown = async () => {
      clearInterval(housekeeping);
      // Order matters: stop starting work, let in-flight restores finish (or abort them cleanly),
      // then flush status and Events, and only then close the engine and the metrics endpoint.
      await stopWatch();
      await reconciler.stop();
      await kube.stop();
      await observation.stop();
      await connected.close();
    };
  })();

  return {
    started,
    async stop() {
      stopping = true;
      await started.catch(() => undefined);
      await shutdown();
      await server.close();
    },
  };
}
