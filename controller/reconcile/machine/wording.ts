// What the machine says: the text of its Events and the fields of its logs, as pure functions of
// the context, so the chart (machine.ts) only decides when to say it.

import type { DegradedReason } from '../../engine/types.js';
import type { LogFields } from '../../log.js';
import type { PlannedCreate, PlannedRemove, SlotHistory } from '../planner.js';
import type { EventReason, EventType } from '../ports.js';
import { failedCreates } from './decide.js';
import type { ReconcileContext, WindowResult, WindowState } from './types.js';

/** One Event to record on the resource. */
export interface EventWords {
  type: EventType;
  reason: EventReason;
  message: string;
}

const createLabel = (c: PlannedCreate): string => `${c.replicaId}#${c.attempt}${c.mode === 'cold' ? ':cold' : ''}`;
const removeLabel = (r: PlannedRemove): string => `${r.replicaId}:${r.cause}`;

/** A Warning per slot that falls back to a cold start (they are few: slots that spent their attempts). */
export function fallbackEvents(history: ReadonlyMap<string, SlotHistory>, creates: readonly PlannedCreate[]): EventWords[] {
  return creates
    .filter((c) => c.mode === 'cold')
    .map((c) => {
      const last = history.get(c.replicaId)?.lastFailure;
      const cause = last ? `${last.reason}: ${last.message}` : 'unknown';
      return { type: 'Warning', reason: 'FallbackUsed', message: `replica ${c.replicaId}: restore attempts spent (last: ${cause}); starting it cold` };
    });
}

/** The one Event a window says when it opens. */
export function windowOpenedEvent(w: WindowState, desired: number, concurrencyBound: number): EventWords {
  const restores = w.inFlight.filter((c) => c.mode === 'restore').length;
  const cold = w.inFlight.length - restores;
  return {
    type: 'Normal',
    reason: 'RestoresStarted',
    message:
      `restoring ${desired} replica(s), at most ${concurrencyBound} at a time: starting ${restores}` +
      `${cold ? `, cold-starting ${cold}` : ''}, removing ${w.removing.length}` +
      (w.probe ? ' (probe after Degraded)' : ''),
  };
}

export function windowOpenedLog(ctx: ReconcileContext, w: WindowState): LogFields {
  return {
    key: ctx.key,
    window: w.number,
    creates: w.inFlight.map(createLabel),
    removes: w.removing.map(removeLabel),
    limit: ctx.plan?.window,
    probe: w.probe,
  };
}

export function refillLog(
  key: string,
  w: WindowState,
  started: { creates: readonly PlannedCreate[]; removes: readonly PlannedRemove[] },
  inFlight: number,
  limit: number,
): LogFields {
  return {
    key,
    window: w.number,
    creates: started.creates.map(createLabel),
    removes: started.removes.map(removeLabel),
    inFlight,
    limit,
  };
}

/**
 * The Events a closed window says: a summary, then one per failure, bounded: a window stops new
 * starts at its first failure, so at most what was in flight then (10) fail with it.
 */
export function windowClosedEvents(result: WindowResult): EventWords[] {
  const failed = failedCreates(result.creates);
  const removeFailed = result.removes.flatMap((r) => (r.ok ? [] : [r]));
  const ok = result.creates.filter((c) => c.ok).length;
  const summary: EventWords = {
    type: failed.length + removeFailed.length > 0 ? 'Warning' : 'Normal',
    reason: 'RestoresFinished',
    message: `${ok} started, ${failed.length} failed, ${result.removes.length - removeFailed.length} removed in ${result.seconds.toFixed(1)}s`,
  };
  return [
    summary,
    ...failed.map((c): EventWords => ({
      type: 'Warning',
      reason: 'RestoreFailed',
      message: `replica ${c.replicaId} attempt ${c.attempt}${c.mode === 'cold' ? ' (cold start)' : ''}: ${c.failure.reason}: ${c.failure.message}`,
    })),
    ...removeFailed.map((r): EventWords => ({
      type: 'Warning',
      reason: 'RemoveFailed',
      message: `container ${r.containerId} of replica ${r.replicaId}: ${r.failure.reason}: ${r.failure.message}`,
    })),
  ];
}

export function windowClosedLog(key: string, result: WindowResult): LogFields {
  const removeFailed = result.removes.filter((r) => !r.ok).length;
  return {
    key,
    window: result.number,
    started: result.creates.filter((c) => c.ok).length,
    failed: failedCreates(result.creates).map((c) => `${c.replicaId}#${c.attempt}:${c.failure.reason}`),
    removed: result.removes.length - removeFailed,
    seconds: result.seconds,
  };
}

export function degradedEvent(d: { reason: DegradedReason; message: string }): EventWords {
  return { type: 'Warning', reason: 'Degraded', message: `${d.reason}: ${d.message}` };
}

export function recoveredEvent(was: DegradedReason | undefined): EventWords {
  return { type: 'Normal', reason: 'Recovered', message: `no longer degraded (was ${was})` };
}

/** Why restores a scale-down no longer wants are cancelled (the abort reason each one carries). */
export function unwantedReason(replicas: number): string {
  return `no longer wanted: spec.replicas is now ${replicas}`;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
