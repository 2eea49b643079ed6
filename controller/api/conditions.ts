// Pure helpers for status conditions, with metav1.Condition's semantics: lastTransitionTime moves
// only when status changes, so "since when is this not Ready?" stays answerable.
import type { Condition, ConditionStatus, ConditionType } from './types.js';

/** What a caller says about a condition; the time of the transition is this module's business. */
export type ConditionUpdate = Omit<Condition, 'lastTransitionTime'>;

/**
 * Kubernetes times are RFC 3339 with whole seconds (metav1.Time drops fractions), so a condition
 * written twice in the same second compares equal.
 */
export function kubeTime(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The Kubernetes transition rule: lastTransitionTime moves only when the status flips. */
export function transitionTime(before: Pick<Condition, 'status' | 'lastTransitionTime'> | undefined, status: ConditionStatus, now: Date): string {
  return before !== undefined && before.status === status ? before.lastTransitionTime : kubeTime(now);
}

/**
 * Returns `list` with `update` applied: a new condition gets `now` as its lastTransitionTime; an existing
 * one keeps its lastTransitionTime unless its status changes. Never mutates `list`. When nothing
 * changes at all, returns the SAME array, so `setCondition(l, c, now) === l` means "no status write needed".
 */
export function setCondition(list: readonly Condition[] | undefined, update: ConditionUpdate, now: Date): Condition[] {
  const current = list ?? [];
  const index = current.findIndex((c) => c.type === update.type);
  const existing = index === -1 ? undefined : current[index];
  const next: Condition = { ...update, lastTransitionTime: transitionTime(existing, update.status, now) };
  if (update.observedGeneration === undefined) delete next.observedGeneration;
  if (existing !== undefined && sameCondition(existing, next) && list !== undefined) return list as Condition[];
  if (existing === undefined) return [...current, next];
  return current.map((c, i) => (i === index ? next : c));
}

/** Returns `list` without the condition of `type` (the same array when there was none). */
export function removeCondition(list: readonly Condition[] | undefined, type: ConditionType): Condition[] {
  const current = list ?? [];
  return current.some((c) => c.type === type) ? current.filter((c) => c.type !== type) : (current as Condition[]);
}

export function findCondition(list: readonly Condition[] | undefined, type: ConditionType): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** True only when the condition exists and its status is 'True' (absent or Unknown is not true). */
export function isTrue(list: readonly Condition[] | undefined, type: ConditionType): boolean {
  return conditionStatus(list, type) === 'True';
}

export function isFalse(list: readonly Condition[] | undefined, type: ConditionType): boolean {
  return conditionStatus(list, type) === 'False';
}

/** The condition's status, or 'Unknown' when it is absent. */
export function conditionStatus(list: readonly Condition[] | undefined, type: ConditionType): ConditionStatus {
  return findCondition(list, type)?.status ?? 'Unknown';
}

function sameCondition(a: Condition, b: Condition): boolean {
  return (
    a.type === b.type &&
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.lastTransitionTime === b.lastTransitionTime &&
    a.observedGeneration === b.observedGeneration
  );
}
