// Wires one agent together: watch -> queue -> reconciler (xstate machine per resource) -> engine,
// with status, Events and metrics on the side. main.ts only parses flags and handles signals.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import type { AgentConfig } from './config.js';
import { systemClock } from './engine/clock.js';
import { createDockerEngine, type DockerEngine } from './engine/docker-engine.js';
import { EngineError } from './engine/errors.js';
import type { EngineEvent } from './engine/types.js';
import { isWorldWritable } from './engine/hygiene.js';
import { createHealth } from './health.js';
import { EndpointSync, createEndpointSliceClient } from './kube/endpoint-slices.js';
import { DepartedNodeSweeper } from './kube/departed-nodes.js';
import { bootstrapEventOf, createKubeLayer, type KubeLayer } from './kube/index.js';
import { refOf } from './reconcile/desired.js';
import type { Logger } from './log.js';
import { createMetricsAuthorizer } from './kube/metrics-auth.js';
import {
  createMetrics,
  observeEngine,
  selfSignedCertificate,
  startMetricsServer,
  type CrsMetrics,
  type MetricsServer,
  type MetricsServerOptions,
} from './metrics/index.js';
import { nodeLabels, selectsNode } from './reconcile/node-selection.js';
import { runPeriodically } from './periodic.js';
import { createReconciler } from './reconcile/runner.js';
import { VERSION } from './version.js';
import { keyOf, splitKey } from './vocabulary.js';

export interface Agent {
  /** Resolves once the caches synced and the workers run. */
  readonly started: Promise<void>;
  stop(): Promise<void>;
}

/** Waiting for an unreachable Docker engine at start: 0.5 s doubling to 30 s. */
const ENGINE_RETRY: BackoffPolicy = { initialMs: 500, maxMs: 30_000 };
/** Housekeeping runs this long after engine work (restores, removals) ... */
const SWEEP_AFTER_WORK_MS = 60_000;
/** ... and this often when nothing happens (the safety net: an idle agent has nothing to sweep). */
const SWEEP_IDLE_INTERVAL_MS = 10 * 60_000;

/** Engine events after which housekeeping may find something: a restore's leaked copy, a container to collect. */
const SWEEP_AFTER: ReadonlySet<EngineEvent['type']> = new Set(['restore.succeeded', 'restore.failed', 'coldstart.succeeded', 'replica.removed']);

export async function startAgent(config: AgentConfig, logger: Logger): Promise<Agent> {
  // One keep-alive connection pool for every apiserver call, not a TLS handshake per call (kube/agents.ts).
  const kc = new k8s.KubeConfig();
  if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
  else kc.loadFromCluster();

  const metrics = createMetrics({ version: VERSION });
  let engine: DockerEngine | undefined;
  let stopping = false;
  // Aborted by stop(): the wait for an unreachable engine must not hold the shutdown.
  const stopSignal = new AbortController();
  const kube = createKubeLayer(kc, {
    node: config.nodeName,
    namespace: config.namespace,
    workers: config.workers,
    resyncPeriodMs: config.resyncSeconds * 1000,
    logger: logger.with({ component: 'kube' }),
    queueMetrics: metrics.workQueue,
  });
  // /healthz fails when the agent is wedged, /readyz unless caches synced and Docker answers (health.ts).
  const health = createHealth(
    { engine: () => engine, pendingWork: () => kube.queue.pending, cachesSynced: () => kube.hasSynced() },
    { wedgedAfterMs: config.wedgedAfterSeconds * 1000 },
  );
  const server: MetricsServer = await startMetricsServer({
    registry: metrics.registry,
    address: { host: config.metricsHost, port: config.metricsPort },
    ...(await metricsServing(config, kc, logger)),
    ready: () => health.ready(),
    health: () => health.health(),
  });
  logger.info('metrics server listening', { url: server.url, secure: config.metricsSecure });

  // The engine may be down when the agent starts (a host booting, dockerd restarting): wait for it
  // with backoff instead of crash-looping; /readyz says why meanwhile.
  // A host without the checkpoint root simply has no path sources: refuse those, run the rest.
  const checkpointRoot = existsSync(config.checkpointRoot) ? config.checkpointRoot : undefined;
  if (!checkpointRoot) {
    logger.warn('checkpoint root does not exist; spec.checkpoint.path sources will be refused', { checkpointRoot: config.checkpointRoot });
  }
  await warnIfWorldWritable(config, metrics, logger);
  const connectEngine = async (): Promise<DockerEngine> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await createDockerEngine({
          dockerSocket: config.dockerSocket,
          dockerRoot: config.dockerRoot,
          containerdTmp: config.containerdTmp,
          node: config.nodeName,
          concurrencyLimit: config.maxConcurrentRestores,
          maxReplicasPerHost: config.maxReplicasPerHost,
          callTimeoutMs: config.dockerTimeoutSeconds * 1000,
          cleanupTimeoutMs: config.dockerTimeoutSeconds * 1000,
          ...(checkpointRoot ? { checkpointRoot } : {}),
        });
      } catch (err) {
        if (stopping) throw err;
        // Only an unreachable engine is worth waiting for; a bad data root or limit is a config error.
        if (!(err instanceof EngineError) || err.code !== 'EngineUnavailable') throw err;
        const delay = backoffDelay(ENGINE_RETRY, attempt + 1);
        logger.warn('Docker engine not reachable; retrying', { socket: config.dockerSocket, retryInMs: delay, err });
        await systemClock.sleep(delay, stopSignal.signal).catch(() => undefined);
        if (stopping) throw err;
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
    health.start();
    const observation = observeEngine(connected, metrics, config.nodeName, {
      onError: (err) => logger.warn('disk headroom poll failed', { err }),
    });
    connected.onEvent((event) => {
      if (event.type === 'hygiene.ignored') logger.debug('hygiene left a planted-looking entry alone', { path: event.path, reason: event.reason });
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
        agentLimits: { ...(checkpointRoot ? { checkpointRoot } : {}), hostCpus: os.availableParallelism(), requireMemoryLimit: config.requireMemoryLimit },
        // No Node object: only an empty selector matches, others are 'unknown' (what runs is kept).
        selectsNode: (resource) => selectsNode(resource, nodeLabels(kube.node.get(config.nodeName))),
      },
    );

    // ---- EndpointSlices of Ready replicas (issue 15): moved by restores finishing, containers
    // changing, the spec changing, and the engine's event stream coming back; re-checked at the
    // informer's resync (--resync-seconds), the safety net for a missed event. No timer of its own:
    // an idle agent makes no calls for them.
    const endpoints = new EndpointSync({
      client: createEndpointSliceClient(kc),
      node: config.nodeName,
      address: config.nodeAddress ?? nodeAddress(),
      listReplicas: (uid, signal) => connected.listReplicas(uid, signal),
      logger: logger.with({ component: 'endpoints' }),
    });
    const syncEndpointsOf = (uid: string): void => {
      const owner = kube.resources.list().find((r) => r.metadata.uid === uid);
      if (owner) void endpoints.sync(owner);
    };
    connected.onEvent((event) => {
      if (event.type === 'restore.succeeded' || event.type === 'coldstart.succeeded') syncEndpointsOf(event.owner.uid);
    });
    // spec.checkpoint.bootstrap (issue 16): started, done and failed as Events on the resource.
    connected.onEvent((event) => {
      const told = bootstrapEventOf(event);
      if (!told || !('owner' in event) || !('namespace' in event.owner)) return;
      const owner = kube.resources.list().find((r) => r.metadata.uid === event.owner.uid);
      if (owner) kube.events.record(refOf(owner), told.type, told.reason, `node ${config.nodeName}: ${told.message}`);
    });
    kube.resources.on({
      add: (o) => void endpoints.sync(o),
      update: (o, cause) => void (cause === 'resync' ? endpoints.sync(o) : endpoints.syncOnSpecChange(o)),
      delete: (o) => void endpoints.forget(o.metadata.namespace, o.metadata.uid),
    });
    // ---- end of EndpointSlices

    // ---- Engine events (issue 10): a replica that dies, is killed or removed by hand is noticed in
    // seconds. The owner's actor looks again at once; a resource without an actor yet is enqueued.
    // When the stream comes back after a break, everything is enqueued once (re-list): what happened
    // while it was down is seen. The periodic resync stays as the safety net.
    const stopWatch = connected.watchContainers((event) => {
      if (event.type === 'replica') syncEndpointsOf(event.change.ownerUid); // issue 15: a replica died or was removed
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
      for (const r of kube.resources.list()) {
        kube.queue.add(keyOf(r.metadata.namespace, r.metadata.name));
        void endpoints.sync(r); // replicas may have died unseen while the stream was down
      }
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
      health.reconciled(result.outcome);
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

    // ---- A node that left for good (issue 12): its entry and finalizer are removed by the agents
    // that remain, once its Node has been missing for --departed-node-grace-seconds.
    const departed = startDepartedNodeSweeps(kc, kube, config, logger);
    // ---- end of departed nodes

    // Housekeeping: leaked checkpoint copies (containerd issue 10166) and containers of resources
    // deleted while no agent ran. Orphans are judged only when every namespace is watched: a
    // namespace-scoped agent cannot tell a foreign namespace's resource from a deleted one.
    // Runs never overlap (a hung Docker delays the next one instead of piling them up), and every
    // engine call in them has its deadline. Driven by what makes work for it: a minute after start
    // (what a previous run left) and after engine work or a deleted resource; otherwise every
    // 10 minutes, so an idle agent does not walk Docker's data root every minute.
    const housekeeping = runPeriodically(
      async (signal) => {
        await connected.sweep(signal).catch((err: unknown) => logger.warn('sweep failed', { err }));
        if (config.namespace === undefined && kube.hasSynced() && !signal.aborted) {
          const known = new Set(kube.resources.list().map((r) => r.metadata.uid));
          const collected = await reconciler.collectOrphans(known).catch((err: unknown) => {
            logger.warn('orphan collection failed', { err });
            return undefined;
          });
          if (collected?.removed) logger.info('removed orphaned replicas', { ...collected });
        }
      },
      SWEEP_IDLE_INTERVAL_MS,
      (err) => logger.warn('housekeeping failed', { err }),
    );
    housekeeping.soon(SWEEP_AFTER_WORK_MS);
    connected.onEvent((event) => {
      if (SWEEP_AFTER.has(event.type)) housekeeping.soon(SWEEP_AFTER_WORK_MS);
    });
    kube.resources.on({ delete: () => housekeeping.soon(SWEEP_AFTER_WORK_MS) });

    shutdown = async () => {
      health.stop();
      await housekeeping.stop();
      await departed.stop();
      // Order matters: stop starting work, let in-flight restores finish (or abort them cleanly),
      // then flush status and Events, and only then close the engine and the metrics endpoint.
      await stopWatch();
      await endpoints.drain();
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
      stopSignal.abort(new Error('the agent is stopping'));
      await started.catch(() => undefined);
      await shutdown();
      await server.close();
    },
  };
}

/** Sweeps for departed nodes every quarter of the grace period (1 s to 15 s). */
function startDepartedNodeSweeps(kc: k8s.KubeConfig, kube: KubeLayer, config: AgentConfig, logger: Logger): { stop(): Promise<void> } {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const graceMs = config.departedNodeGraceSeconds * 1000;
  const sweeper = new DepartedNodeSweeper({
    node: config.nodeName,
    graceMs,
    // timeoutSeconds bounds the list on the apiserver's side: a hung list cannot stall the sweeps.
    listNodeNames: async () => new Set((await core.listNode({ timeoutSeconds: 30 })).items.map((n) => n.metadata?.name ?? '')),
    resources: () => kube.resources.list(),
    status: kube.status,
    finalizer: kube.finalizer,
    clock: { now: () => Date.now() },
    logger: logger.with({ component: 'departed-nodes' }),
  });
  return runPeriodically(
    async () => {
      if (kube.hasSynced()) await sweeper.sweep();
    },
    Math.min(15_000, Math.max(1000, graceMs / 4)),
    (err) => logger.warn('departed-node sweep failed; next sweep retries', { err }),
  );
}

/**
 * Host hygiene refuses whatever a local user plants under --containerd-tmp, but a world-writable
 * folder (the host /tmp) still lets anyone plant there: say so once, and keep it visible as a gauge.
 */
async function warnIfWorldWritable(config: AgentConfig, metrics: CrsMetrics, logger: Logger): Promise<void> {
  const worldWritable = await isWorldWritable(config.containerdTmp).catch(() => false);
  metrics.containerdTmpWorldWritable(config.nodeName, worldWritable);
  if (worldWritable)
    logger.warn(
      '--containerd-tmp is world-writable: any local user can plant folders there; give containerd a root-only XDG_RUNTIME_DIR (0700) and point the flag at it (README: Security model)',
      {
        containerdTmp: config.containerdTmp,
      },
    );
}

/**
 * Secure metrics serving (the default): HTTPS with the operator's certificate or a self-signed one,
 * and /metrics only for tokens the apiserver authorizes. --metrics-secure=false: plain and open.
 */
async function metricsServing(config: AgentConfig, kc: k8s.KubeConfig, logger: Logger): Promise<Pick<MetricsServerOptions, 'tls' | 'guard'>> {
  if (!config.metricsSecure) {
    logger.warn('metrics endpoint serves plain HTTP without authentication (--metrics-secure=false): for local use only');
    return {};
  }
  const tls =
    config.metricsCertFile && config.metricsKeyFile
      ? { cert: await readFile(config.metricsCertFile), key: await readFile(config.metricsKeyFile) }
      : selfSignedCertificate(`crs-controller-${config.nodeName}`, ['localhost', os.hostname(), '127.0.0.1', '::1']);
  const authorizer = createMetricsAuthorizer(kc);
  return { tls, guard: (token) => authorizer.check(token) };
}

/** The first non-loopback IPv4 of this host (the DaemonSet passes status.hostIP as NODE_IP instead). */
function nodeAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}
