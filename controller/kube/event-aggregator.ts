// Pure bookkeeping behind the event recorder, after client-go's EventCorrelator:
//  - spam filter: a token bucket per involved object (burst, then one event per refill interval), so
//    a failure storm cannot flood the apiserver;
//  - similar-event aggregation: once `similarThreshold` distinct messages with the same (object, type,
//    reason) have been seen within the window, further ones are folded into ONE event whose message
//    says "(combined from similar events): <latest>";
//  - deduplication: the same (object, type, reason, message) within the window updates the existing
//    Event's count and lastTimestamp instead of creating another.
// Time is a parameter; bounded memory (least recently used entries are evicted), drop streaks included.

export interface EventKeyInput {
  uid: string;
  type: string;
  reason: string;
  message: string;
}

export interface AggregatorOptions {
  /** Same-event window. Default 10 min (client-go's). */
  windowMs?: number;
  /** Events an object may emit at once. Default 25 (client-go's). */
  burst?: number;
  /** One more event allowed per this many ms. Default 10 s. */
  refillMs?: number;
  /** Distinct messages per (object, type, reason) in the window before combining. Default 10. */
  similarThreshold?: number;
  /** Entries kept per table. Default 4096. */
  maxEntries?: number;
}

export interface SeenEvent {
  /** The Event object's name in the apiserver. */
  name: string;
  count: number;
  firstTimestampMs: number;
  lastTimestampMs: number;
}

export type Admission =
  | { admitted: false }
  | {
      admitted: true;
      /** Key of the Event this occurrence counts towards. */
      key: string;
      /** Message to write (combined when aggregation kicked in). */
      message: string;
    };

export const COMBINED_PREFIX = '(combined from similar events): ';

export class EventAggregator {
  private readonly windowMs: number;
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly similarThreshold: number;
  private readonly maxEntries: number;
  private readonly buckets = new Map<string, { tokens: number; updatedMs: number }>();
  private readonly similar = new Map<string, { messages: Set<string>; firstMs: number }>();
  private readonly seen = new Map<string, SeenEvent>();
  /** Objects in a streak of refused events (the recorder warns once per streak). */
  private readonly dropStreaks = new Map<string, true>();

  constructor(options: AggregatorOptions = {}) {
    this.windowMs = positive(options.windowMs ?? 10 * 60_000, 'windowMs');
    this.burst = positive(options.burst ?? 25, 'burst');
    this.refillMs = positive(options.refillMs ?? 10_000, 'refillMs');
    this.similarThreshold = positive(options.similarThreshold ?? 10, 'similarThreshold');
    this.maxEntries = positive(options.maxEntries ?? 4096, 'maxEntries');
  }

  /** Decides whether this occurrence may be sent and under which key and message. */
  admit(e: EventKeyInput, nowMs: number): Admission {
    if (!this.takeToken(e.uid, nowMs)) return { admitted: false };
    const similarKey = `${e.uid}\u0000${e.type}\u0000${e.reason}`;
    let group = this.similar.get(similarKey);
    if (!group || nowMs - group.firstMs > this.windowMs) {
      group = { messages: new Set(), firstMs: nowMs };
    }
    group.messages.add(e.message);
    touch(this.similar, similarKey, group, this.maxEntries);
    if (group.messages.size > this.similarThreshold) {
      return { admitted: true, key: `${similarKey}\u0000<combined>`, message: COMBINED_PREFIX + e.message };
    }
    return { admitted: true, key: `${similarKey}\u0000${e.message}`, message: e.message };
  }

  /** The Event to update for `key`, if one was written within the window. */
  lookup(key: string, nowMs: number): SeenEvent | undefined {
    const s = this.seen.get(key);
    if (!s) return undefined;
    if (nowMs - s.lastTimestampMs > this.windowMs) {
      this.seen.delete(key);
      return undefined;
    }
    return s;
  }

  /** Remembers what was written for `key`. */
  remember(key: string, event: SeenEvent): void {
    touch(this.seen, key, event, this.maxEntries);
  }

  forget(key: string): void {
    this.seen.delete(key);
  }

  /**
   * Notes an event of `objectKey` that was refused; true when this starts a streak (warn once per
   * streak). Bounded like every table here: the streak of an object deleted mid-streak would
   * otherwise stay forever.
   */
  noteDropped(objectKey: string): boolean {
    const first = !this.dropStreaks.has(objectKey);
    touch(this.dropStreaks, objectKey, true, this.maxEntries);
    return first;
  }

  /** An event of `objectKey` was admitted: its streak of refusals, if any, is over. */
  noteAdmitted(objectKey: string): void {
    this.dropStreaks.delete(objectKey);
  }

  /** Entries per table (for leak tests). */
  sizes(): { buckets: number; similar: number; seen: number; dropStreaks: number } {
    return { buckets: this.buckets.size, similar: this.similar.size, seen: this.seen.size, dropStreaks: this.dropStreaks.size };
  }

  private takeToken(uid: string, nowMs: number): boolean {
    const b = this.buckets.get(uid) ?? { tokens: this.burst, updatedMs: nowMs };
    const refilled = Math.min(this.burst, b.tokens + (nowMs - b.updatedMs) / this.refillMs);
    const ok = refilled >= 1;
    touch(this.buckets, uid, { tokens: ok ? refilled - 1 : refilled, updatedMs: nowMs }, this.maxEntries);
    return ok;
  }
}

/** Sets key as most recently used; evicts the least recently used entry beyond max. */
function touch<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}

function positive(v: number, field: string): number {
  if (!(v > 0)) throw new RangeError(`event aggregator: ${field} must be > 0, got ${v}`);
  return v;
}
