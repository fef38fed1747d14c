/**
 * Credit-based flow control as small value types. Sequence numbers are absolute byte offsets
 * (vpnkit's Window frame carries "you may send up to seq"). Pure code: time is injected.
 */

/** The sending half: how much the peer lets us send. */
export class SendCredit {
  /** bytes sent so far */
  sent = 0;
  /** the peer's last advertised absolute limit */
  limit = 0;

  get available(): number {
    return Math.max(0, this.limit - this.sent);
  }

  /** Applies a Window frame. Stale (lower) limits are ignored: windows never shrink. */
  update(seq: number): void {
    if (seq > this.limit) this.limit = seq;
  }

  consume(n: number): void {
    if (n > this.available) throw new RangeError(`sending ${n} bytes with only ${this.available} credit`);
    this.sent += n;
  }
}

/**
 * How many bytes of window growth a session may hand out in all, across its channels: what a
 * grown window lets wait in memory when its destination stops reading. Returned when a channel ends.
 */
export class WindowBudget {
  constructor(public available: number) {}

  take(n: number): number {
    const got = Math.max(0, Math.min(n, this.available));
    this.available -= got;
    return got;
  }

  give(n: number): void {
    this.available += n;
  }
}

/**
 * A window grows when the peer used all its credit and half the window was handed on within this
 * many milliseconds: the round trip of the Window frame, not the destination, is what limits the
 * flow. A slow or stalled destination never makes a window grow.
 */
export const GROW_WITHIN_MS = 5;

export interface RecvWindowOptions {
  /** the largest the window may grow to (default: no growth) */
  max?: number;
  budget?: WindowBudget;
  /** milliseconds, monotonic */
  now?: () => number;
}

const monotonicNow = () => performance.now();

/** The receiving half: what we advertised, received and handed on. */
export class RecvWindow {
  received = 0;
  consumed = 0;
  /** absolute limit advertised to the peer */
  advertised = 0;
  /** the window now: starts at the initial size, may grow up to max */
  size: number;
  private readonly initial: number;
  private max: number;
  private readonly budget: WindowBudget | undefined;
  private readonly now: () => number;
  /** the peer used every byte of its credit since the last Window */
  private starved = false;
  private lastGrant = 0;

  constructor(size: number, opts: RecvWindowOptions = {}) {
    this.size = this.initial = size;
    this.max = Math.max(size, opts.max ?? size);
    this.budget = opts.budget;
    this.now = opts.now ?? monotonicNow;
  }

  /** Bytes held: received but not yet consumed. Never exceeds `size`. */
  get buffered(): number {
    return this.received - this.consumed;
  }

  /** The first Window to send: opens `size` bytes of credit. */
  open(): number {
    this.lastGrant = this.now();
    this.advertised = this.consumed + this.size;
    return this.advertised;
  }

  /** Records n received bytes; false when they overrun the advertised credit (a protocol error). */
  receive(n: number): boolean {
    if (this.received + n > this.advertised) return false;
    this.received += n;
    if (this.received === this.advertised) this.starved = true;
    return true;
  }

  /**
   * Records n bytes accepted by the destination. Returns the new limit to advertise when the
   * remaining credit fell below half the window, else null. The window doubles (up to max, within
   * the budget) when the peer had run out of credit and that half went by in under GROW_WITHIN_MS.
   */
  consume(n: number): number | null {
    this.consumed += n;
    if (this.advertised - this.consumed >= this.size / 2) return null;
    const t = this.now();
    if (this.starved && this.size < this.max && t - this.lastGrant < GROW_WITHIN_MS) {
      const want = Math.min(this.size, this.max - this.size);
      this.size += this.budget ? this.budget.take(want) : want;
    }
    this.starved = false;
    this.lastGrant = t;
    this.advertised = this.consumed + this.size;
    return this.advertised;
  }

  /**
   * The channel ended and holds nothing more: its growth goes back to the budget, and it never
   * grows again (bytes the peer had in flight may still be received and credited back). Calling
   * it again gives nothing more back.
   */
  release(): void {
    this.budget?.give(this.size - this.initial);
    this.size = this.max = this.initial;
  }
}
