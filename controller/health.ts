// What /healthz and /readyz say (issue 10): the truth about whether the agent can do its work.
//
// Wedged (/healthz fails, so the kubelet restarts the agent): work is pending and nothing has made
// progress for `wedgedAfterMs` since it became pending. Pending work: the work queue holds keys
// (waiting, being reconciled, or due later after a backoff), or the engine has Docker calls in
// progress or restores holding or waiting for a slot. Progress: the Docker engine answered a call
// (any HTTP answer), or a reconcile ended in a state that did not have to back off. A Docker socket
// that accepts and never answers gives neither: every call ends at its deadline, every reconcile
// backs off. Idle is never wedged: with nothing to do, a dead engine restarts nothing.
//
// Ready (/readyz): the caches have synced, the engine is connected and its latest call got an
// answer. The agent pings the engine whenever it has not answered for `probeIntervalMs`, so an idle
// engine keeps proving itself and a hung one is noticed without waiting for work.

import type { EngineHealth } from './engine/docker-engine.js';

type Verdict = true | { ok: false; reason: string };

/** The part of the engine health needs. */
export interface ProbedEngine {
  readonly health: EngineHealth;
  ping(signal?: AbortSignal): Promise<void>;
}

export interface HealthSources {
  /** The engine once connected; undefined while the agent still waits for Docker. */
  engine(): ProbedEngine | undefined;
  /** Keys the work queue holds: waiting, being reconciled, or due later. */
  pendingWork(): number;
  cachesSynced(): boolean;
}

export interface HealthOptions {
  wedgedAfterMs: number;
  /** Ping the engine when it has not answered for this long. Default: a quarter of wedgedAfterMs, at most 10 s. */
  probeIntervalMs?: number;
  /** Milliseconds since the epoch; injectable for unit tests. */
  now?: () => number;
}

export interface AgentHealth {
  health(): Verdict;
  ready(): Verdict;
  /** A reconcile ended with this outcome; anything but backingOff or error counts as progress. */
  reconciled(outcome: string): void;
  /** Runs one engine probe if it is due (the timer calls this; tests call it directly). */
  probe(): Promise<void>;
  /** Starts the probe timer. */
  start(): void;
  stop(): void;
}

const NO_PROGRESS_OUTCOMES = new Set(['backingOff', 'error']);

export function createHealth(sources: HealthSources, options: HealthOptions): AgentHealth {
  const now = options.now ?? Date.now;
  const wedgedAfterMs = options.wedgedAfterMs;
  if (!Number.isFinite(wedgedAfterMs) || wedgedAfterMs <= 0) throw new RangeError(`wedgedAfterMs: must be > 0, got ${String(wedgedAfterMs)}`);
  const probeIntervalMs = options.probeIntervalMs ?? Math.min(10_000, Math.max(1, Math.floor(wedgedAfterMs / 4)));
  let lastReconcileProgress: number | undefined;
  let pendingSince: number | undefined;
  let probing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const pending = (): number => sources.pendingWork() + (sources.engine()?.health.busy ?? 0);

  return {
    health() {
      const t = now();
      const work = pending();
      if (work === 0) {
        pendingSince = undefined;
        return true;
      }
      pendingSince ??= t;
      const engineAnswer = sources.engine()?.health.lastAnswerAt?.getTime();
      const lastProgress = Math.max(pendingSince, engineAnswer ?? -Infinity, lastReconcileProgress ?? -Infinity);
      const stalled = t - lastProgress;
      if (stalled < wedgedAfterMs) return true;
      const ago = (at: number | undefined): string => (at === undefined ? 'never' : `${Math.round((t - at) / 1000)} s ago`);
      return {
        ok: false,
        reason:
          `wedged: ${work} work item(s) pending and no progress for ${Math.round(stalled / 1000)} s ` +
          `(Docker last answered ${ago(engineAnswer)}; last reconcile that did not back off ${ago(lastReconcileProgress)})`,
      };
    },

    ready() {
      const engine = sources.engine();
      if (!engine) return { ok: false, reason: 'Docker engine not reached yet' };
      if (!sources.cachesSynced()) return { ok: false, reason: 'caches not synced' };
      if (!engine.health.reachable) return { ok: false, reason: 'Docker engine not answering (its latest call got no answer)' };
      return true;
    },

    reconciled(outcome) {
      if (!NO_PROGRESS_OUTCOMES.has(outcome)) lastReconcileProgress = now();
    },

    probe() {
      const engine = sources.engine();
      if (!engine || probing) return probing ?? Promise.resolve();
      const last = engine.health.lastAnswerAt?.getTime();
      if (engine.health.reachable && last !== undefined && now() - last < probeIntervalMs) return Promise.resolve();
      // The engine's own call deadline bounds the ping; a failure is recorded in engine.health.
      probing = engine
        .ping()
        .catch(() => undefined)
        .finally(() => {
          probing = undefined;
        });
      return probing;
    },

    start() {
      timer ??= setInterval(() => {
        this.health(); // notes when work became pending, between the kubelet's probes too
        void this.probe();
      }, probeIntervalMs);
      timer.unref();
    },

    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
