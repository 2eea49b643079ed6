// Serving a replica: its post-restore hook and its readiness probe, run by the agent right after the
// start and before the restore counts as done (so readyReplicas, conditions, metrics and the slow
// start's "proven" all follow real readiness).
//
// Why the agent probes instead of Docker's HEALTHCHECK: a health check is fixed when the container
// is created and runs INSIDE it, so an httpGet would need an HTTP client in the image (the sample
// image is one static binary), and Docker reports "healthy" only after its first interval. The
// agent probes the host port the replica publishes, exactly the address its EndpointSlice gives out,
// and runs exec probes with docker exec, under deadlines it controls.

import http from 'node:http';
import type Docker from 'dockerode';
import type { PostRestoreHook, ReadinessProbe } from '../api/types.js';
import type { Clock } from './clock.js';
import { EngineError } from './errors.js';
import type { PublishedPort } from './types.js';

/** Output kept from a hook or probe: enough for an Event, never a flood. */
const MAX_OUTPUT_CHARS = 2048;

export interface ProbeResult {
  ok: boolean;
  /** Why it failed (or what it said), for the Event. */
  detail: string;
}

/** What a probe run needs from the outside world: one attempt, bounded by timeoutMs. */
export type ProbeOnce = (timeoutMs: number, signal: AbortSignal) => Promise<ProbeResult>;

/** The bound after which a replica that never passed is a failed restore (like a startup probe). */
export function readinessBoundMs(p: ReadinessProbe): number {
  return (p.initialDelaySeconds + p.failureThreshold * p.periodSeconds) * 1000;
}

/**
 * Probes until successThreshold passes in a row (Ready) or failureThreshold failures in a row
 * (ReadinessTimeout, with the last failure's detail). Kubernetes' probe shape; the clock is injected.
 */
export async function awaitReadiness(probe: ReadinessProbe, once: ProbeOnce, clock: Clock, signal: AbortSignal, what: string): Promise<void> {
  if (probe.initialDelaySeconds > 0) await clock.sleep(probe.initialDelaySeconds * 1000, signal);
  let passes = 0;
  let failures = 0;
  for (;;) {
    const result = await once(probe.timeoutSeconds * 1000, signal).catch((err: unknown): ProbeResult => {
      // Aborted by the restore's deadline or a shutdown: that reason, not the probe's symptom of it.
      if (signal.aborted) throw signal.reason ?? err;
      return { ok: false, detail: err instanceof Error ? err.message : String(err) };
    });
    if (result.ok) {
      failures = 0;
      if (++passes >= probe.successThreshold) return;
    } else {
      passes = 0;
      if (++failures >= probe.failureThreshold)
        throw new EngineError(
          'ReadinessTimeout',
          `${what}: the readiness probe failed ${failures} time(s) in a row (initialDelaySeconds ${probe.initialDelaySeconds}, periodSeconds ${probe.periodSeconds}, ` +
            `failureThreshold ${probe.failureThreshold}); last: ${result.detail}. The replica was removed: check the probe and that the process serves after a restore (docs/serving.md)`,
        );
    }
    await clock.sleep(probe.periodSeconds * 1000, signal);
  }
}

interface ExecResult {
  exitCode: number;
  output: string;
}

function clip(text: string): string {
  return text.length <= MAX_OUTPUT_CHARS ? text : `${text.slice(0, MAX_OUTPUT_CHARS)}... (${text.length - MAX_OUTPUT_CHARS} more characters)`;
}

/**
 * docker exec of `command` in a running container, stdout and stderr together (clipped). The signal
 * ends the wait (the caller's deadline); a process that outlives it keeps running in the container,
 * which is then removed by the failed restore anyway.
 */
async function execInContainer(docker: Docker, containerId: string, command: string[], signal: AbortSignal): Promise<ExecResult> {
  const exec = await docker
    .getContainer(containerId)
    .exec({ Cmd: command, AttachStdout: true, AttachStderr: true, abortSignal: signal } as Docker.ExecCreateOptions);
  const stream = await exec.start({ hijack: true, stdin: false, abortSignal: signal } as Docker.ExecStartOptions);
  let output = '';
  const sink = { write: (chunk: Buffer) => void (output.length < MAX_OUTPUT_CHARS * 2 && (output += chunk.toString())) } as unknown as NodeJS.WritableStream;
  docker.modem.demuxStream(stream, sink, sink);
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      stream.destroy();
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
  const info = await exec.inspect({ abortSignal: signal } as Parameters<Docker.Exec['inspect']>[0]);
  return { exitCode: info.ExitCode ?? -1, output: clip(output.trim()) };
}

/** One GET; any answer 200-399 passes (Kubernetes' rule). The body is read (bounded) and dropped. */
export function httpGetOnce(host: string, port: number, path: string, timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, timeout: timeoutMs, signal, headers: { 'user-agent': 'crs-controller-probe' } }, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      resolve({ ok: status >= 200 && status < 400, detail: `GET http://${host}:${port}${path} answered ${status}` });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, detail: `GET http://${host}:${port}${path}: ${err.message}` }));
  });
}

/** The host port Docker published for `containerPort`/TCP, from the replica's port list. */
export function hostPortFor(ports: readonly PublishedPort[] | undefined, containerPort: number): number | undefined {
  return ports?.find((p) => p.containerPort === containerPort && p.protocol === 'TCP')?.hostPort;
}

/** spec.template.readinessProbe.exec and spec.template.postRestore.exec. */
export interface ExecAction {
  command: string[];
}

/** One exec probe attempt: exit code 0 passes. */
export async function execProbeOnce(docker: Docker, containerId: string, action: ExecAction, timeoutMs: number, signal: AbortSignal): Promise<ProbeResult> {
  const limit = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
  try {
    const r = await execInContainer(docker, containerId, action.command, limit);
    return { ok: r.exitCode === 0, detail: `exec ${JSON.stringify(action.command)} exited ${r.exitCode}${r.output ? `: ${r.output}` : ''}` };
  } catch (err) {
    if (signal.aborted) throw err;
    return {
      ok: false,
      detail: `exec ${JSON.stringify(action.command)}: ${limit.aborted ? `no exit within ${timeoutMs} ms` : err instanceof Error ? err.message : String(err)}`,
    };
  }
}

/** Runs the post-restore hook; throws PostRestoreFailed with the hook's output on a non-zero exit or timeout. */
export async function runPostRestore(docker: Docker, containerId: string, hook: PostRestoreHook, signal: AbortSignal, what: string): Promise<void> {
  const limit = AbortSignal.any([signal, AbortSignal.timeout(hook.timeoutSeconds * 1000)]);
  let result: ExecResult;
  try {
    result = await execInContainer(docker, containerId, hook.exec.command, limit);
  } catch (err) {
    if (signal.aborted) throw err;
    const why = limit.aborted
      ? `did not exit within timeoutSeconds ${hook.timeoutSeconds}`
      : `could not run: ${err instanceof Error ? err.message : String(err)}`;
    throw new EngineError('PostRestoreFailed', `${what}: spec.template.postRestore ${JSON.stringify(hook.exec.command)} ${why}; the replica was removed`, {
      cause: err,
    });
  }
  if (result.exitCode !== 0)
    throw new EngineError(
      'PostRestoreFailed',
      `${what}: spec.template.postRestore ${JSON.stringify(hook.exec.command)} exited ${result.exitCode}; the replica was removed. Output: ${result.output || '(none)'}`,
    );
}
