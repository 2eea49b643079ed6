// Replica slot ids: short, stable, unique within one resource, [a-z0-9]{1,12}.
// The smallest unused non-negative integer in base 36, so ids stay short ("0".."z", "10", ...) and
// a plan is deterministic for the same inputs (tests can name the slots they expect).

export const SLOT_ID_PATTERN = /^[a-z0-9]{1,12}$/;

function slotIdFor(index: number): string {
  return index.toString(36);
}

/** Allocates `count` new slot ids not in `used`, lowest first. */
export function allocateSlotIds(used: ReadonlySet<string>, count: number): string[] {
  const ids: string[] = [];
  for (let index = 0; ids.length < count; index++) {
    const id = slotIdFor(index);
    if (!used.has(id)) ids.push(id);
  }
  return ids;
}

/** Orders slot ids numerically when they are our base-36 ids, then lexically. */
export function compareSlotIds(a: string, b: string): number {
  const na = SLOT_ID_PATTERN.test(a) ? parseInt(a, 36) : Number.NaN;
  const nb = SLOT_ID_PATTERN.test(b) ? parseInt(b, 36) : Number.NaN;
  if (!Number.isNaN(na) && !Number.isNaN(nb) && na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}
