// What this node's status entry says in each phase of the machine (the Progressing condition's
// reason and message), and whether there is anything new to report.

import type { NodeStatus } from '../../api/types.js';
import type { BootstrapState } from '../../engine/types.js';
import { computeNodeStatus, sameNodeStatus, type Progress } from '../status.js';
import type { ReconcileContext } from './types.js';

/** The states that report status (the busy ones only through `restoring`). */
export type Phase = 'restoring' | 'converged' | 'waiting' | 'backingOff' | 'degraded' | 'paused' | 'nodeUnknown';

function restoringProgress(ctx: ReconcileContext): Progress {
  const w = ctx.window;
  const creates = w?.inFlight.length ?? 0;
  const removes = w?.removing.length ?? 0;
  const reason = (ctx.plan?.summary.outdated ?? 0) > 0 ? 'RollingUpdate' : creates > 0 || (w?.creates.length ?? 0) > 0 ? 'Restoring' : 'ScalingDown';
  return { status: 'True', reason, message: `restoring ${creates}, removing ${removes} (window of ${ctx.plan?.window ?? 1})` };
}

function progressFor(phase: Phase, ctx: ReconcileContext, retryMs: number): Progress {
  const summary = ctx.plan?.summary;
  switch (phase) {
    case 'restoring':
      return restoringProgress(ctx);
    case 'converged':
      return { status: 'False', reason: 'Converged', message: `${summary?.ready ?? 0} replica(s) ready, nothing to do` };
    case 'waiting':
      return {
        status: 'True',
        reason: 'WaitingForReplicas',
        message: `${summary?.notReady ?? 0} replica(s) not ready, ${summary?.pending ?? 0} created but not visible yet`,
      };
    case 'backingOff': {
      const d = ctx.decision?.kind === 'backoff' ? ctx.decision : undefined;
      return {
        status: 'True',
        reason: 'BackingOff',
        message: `retrying in ${Math.round(retryMs / 1000)}s after ${d?.reason ?? 'a failure'}: ${d?.message ?? ''}`,
      };
    }
    case 'degraded':
      return { status: 'False', reason: 'Stalled', message: `stopped until the cause is fixed: ${ctx.degraded?.reason ?? ''}` };
    case 'paused':
      return { status: 'False', reason: 'Paused', message: 'spec.paused is true: no changes are made' };
    case 'nodeUnknown':
      return {
        status: 'False',
        reason: 'NodeUnknown',
        message: "this agent's Node object is missing, so spec.nodeSelector cannot be judged: replicas are kept as they are until it is back",
      };
  }
}

/**
 * The node status to report in `phase`, or undefined when there is nothing new to say. A node the
 * resource does not select, that holds none of its replicas and never wrote an entry, stays out of
 * status.nodes (a large cluster would otherwise list every node). Once written, the entry is kept
 * truthful (the kube layer owns removing it).
 */
export function statusToReport(
  ctx: ReconcileContext,
  phase: Phase,
  env: { node: string; retryMs: number; now: number; bootstrap?: BootstrapState | undefined },
): { status: NodeStatus; restoringNow: number } | undefined {
  const { ref, plan, desired } = ctx;
  if (!ref || !plan || !desired) return undefined;
  if (!ctx.selected && plan.summary.replicas === 0 && !ctx.degraded && !ctx.lastStatus) return undefined;
  const restoringNow = phase === 'restoring' ? (ctx.window?.inFlight.length ?? 0) : 0;
  const status = computeNodeStatus({
    node: env.node,
    generation: ref.generation,
    summary: plan.summary,
    restoringNow,
    paused: desired.paused,
    progress: progressFor(phase, ctx, env.retryMs),
    degraded: ctx.degraded ? { reason: ctx.degraded.reason, message: ctx.degraded.message } : undefined,
    bootstrap: env.bootstrap,
    previous: ctx.lastStatus,
    now: new Date(env.now),
  });
  return sameNodeStatus(ctx.lastStatus, status) ? undefined : { status, restoringNow };
}
