/**
 * Says whether a line that repeats (a host redialling with a wrong secret is refused every second)
 * is logged now: the first of a kind at once, then at most one per `intervalMs`, carrying how many
 * were held back since the last one. Pure: the clock is injected.
 */
export interface RepeatLimiterOptions {
  intervalMs: number;
  now: () => number;
}

export interface RepeatVerdict {
  /** log this occurrence */
  log: boolean;
  /** occurrences of this kind held back since the last logged one (when log is true) */
  held: number;
  /** ms since the last logged one (when log is true and held > 0) */
  sinceMs: number;
}

/** Kinds remembered at most (the oldest is forgotten past it): the keys may come from a peer. */
const MAX_KINDS = 64;

export class RepeatLimiter {
  private readonly kinds = new Map<string, { at: number; held: number }>();

  constructor(private readonly o: RepeatLimiterOptions) {}

  hit(kind: string): RepeatVerdict {
    const now = this.o.now();
    const k = this.kinds.get(kind);
    if (k && now - k.at < this.o.intervalMs) {
      k.held++;
      return { log: false, held: 0, sinceMs: 0 };
    }
    if (!k && this.kinds.size >= MAX_KINDS) this.kinds.delete(this.kinds.keys().next().value as string);
    this.kinds.set(kind, { at: now, held: 0 });
    return { log: true, held: k?.held ?? 0, sinceMs: k ? now - k.at : 0 };
  }
}
