// The machine's timed rests: how long each waits before it looks again. The machine's `after`
// timers and the runner's requeue hint both read this one function, named by the state's meta.

import { backoffDelay } from '../../backoff.js';
import type { MachineOptions, ReconcileContext } from './types.js';

/** The delays a resting state can name in its `meta.delay`. */
export type DelayName = 'retryDelay' | 'probeDelay' | 'waitingDelay' | 'deleteRetryDelay';

type DelayContext = Pick<ReconcileContext, 'failedRounds' | 'degraded' | 'deleteFailures'>;

/**
 * Milliseconds until the named timer fires, or undefined when it would do nothing (a Degraded
 * without a probe waits for a spec change, however long).
 */
export function delayMs(name: Exclude<DelayName, 'probeDelay'>, ctx: DelayContext, options: MachineOptions): number;
export function delayMs(name: DelayName, ctx: DelayContext, options: MachineOptions): number | undefined;
export function delayMs(name: DelayName, ctx: DelayContext, options: MachineOptions): number | undefined {
  switch (name) {
    case 'retryDelay':
      return backoffDelay(options.backoff, Math.max(1, ctx.failedRounds));
    case 'probeDelay':
      return ctx.degraded?.probe === 'none' ? undefined : backoffDelay(options.probe, (ctx.degraded?.probes ?? 0) + 1);
    case 'waitingDelay':
      return options.waitingRecheckMs;
    case 'deleteRetryDelay':
      return backoffDelay(options.backoff, Math.max(1, ctx.deleteFailures));
  }
}
