// When a failure counts against a slot's `maxAttempts`, and when it is forgiven. PURE (time comes in).
//
// maxAttempts means "consecutive failed restores of this slot". Without forgiveness every Docker
// restart or app crash over an agent's lifetime would add up until every slot counts as exhausted
// and the resource goes Degraded, refilling one slot per probe. So:
//  - a replica that ran for `provenAfterMs` (default 60 s) proved the checkpoint: when it dies, the
//    slot's count starts again at 0 and that death is not counted. The age is measured from the
//    container's creation to when its death is noticed, which the engine's event stream makes
//    seconds; a death noticed late (stream down) errs on the side of forgiving.
//  - an engine outage (its event stream broke) is not the checkpoint's fault: replicas that lived
//    across it and die, failures while it lasts (plus a short grace after it is back), and failures
//    counted in the `outageLookbackMs` before it (dockerd stops every container, which we see die,
//    for up to its stop timeout before it closes the stream) are all forgiven.
// A checkpoint whose process dies right after every restore still ends in maxAttempts: those deaths
// are young and happen with the engine up.

import type { SlotHistory } from './planner.js';

export interface EngineOutage {
  /** When the engine's event stream broke. */
  lostAt: number;
  /** When it was subscribed again; undefined while the engine is still away. */
  backAt: number | undefined;
}

export interface FailureCounting {
  now: number;
  provenAfterMs: number;
  outage: EngineOutage | undefined;
  /** After the engine is back, failures of work that straddled the outage are forgiven this long. */
  outageGraceMs: number;
}

/** Failures happening now are the engine's, not the checkpoint's. */
export function duringOutage(c: FailureCounting): boolean {
  const o = c.outage;
  return o !== undefined && c.now >= o.lostAt && (o.backAt === undefined || c.now <= o.backAt + c.outageGraceMs);
}

/** One more failed restore of the slot, remembered with its time so an outage can take it back. */
export function countFailure(entry: SlotHistory, c: FailureCounting | undefined): SlotHistory {
  if (c && duringOutage(c)) return entry;
  return {
    ...entry,
    failedRestores: entry.failedRestores + 1,
    ...(c ? { countedAt: [...(entry.countedAt ?? []), c.now] } : {}),
  };
}

/** A replica created at `createdAt` was found dead now: counted, forgiven, or the slot starts over. */
export function countDeath(entry: SlotHistory, createdAt: number, c: FailureCounting | undefined): SlotHistory {
  if (!c) return countFailure(entry, c);
  if (c.outage && createdAt <= c.outage.lostAt) return entry; // it lived across an engine outage
  if (c.now - createdAt >= c.provenAfterMs) return { ...entry, failedRestores: 0, countedAt: [] };
  return countFailure(entry, c);
}

/** The engine's stream broke at `lostAt`: failures counted since `lostAt - lookbackMs` were the engine's. */
export function forgiveBefore(history: ReadonlyMap<string, SlotHistory>, lostAt: number, lookbackMs: number): Map<string, SlotHistory> {
  const next = new Map(history);
  for (const [id, entry] of history) {
    const recent = (entry.countedAt ?? []).filter((t) => t >= lostAt - lookbackMs);
    if (recent.length === 0) continue;
    next.set(id, {
      ...entry,
      failedRestores: Math.max(0, entry.failedRestores - recent.length),
      countedAt: (entry.countedAt ?? []).filter((t) => t < lostAt - lookbackMs),
    });
  }
  return next;
}
