/**
 * Credit-based flow control as two tiny value types. Sequence numbers are absolute byte
 * offsets (vpnkit's Window frame carries "you may send up to seq"). Pure code.
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

/** The receiving half: what we advertised, received and handed on. */
export class RecvWindow {
  received = 0;
  consumed = 0;
  /** absolute limit advertised to the peer */
  advertised = 0;

  constructor(readonly size: number) {}

  /** Bytes held: received but not yet consumed. Never exceeds `size`. */
  get buffered(): number {
    return this.received - this.consumed;
  }

  /** The first Window to send: opens `size` bytes of credit. */
  open(): number {
    this.advertised = this.consumed + this.size;
    return this.advertised;
  }

  /** Records n received bytes; false when they overrun the advertised credit (a protocol error). */
  receive(n: number): boolean {
    if (this.received + n > this.advertised) return false;
    this.received += n;
    return true;
  }

  /**
   * Records n bytes accepted by the destination. Returns the new limit to advertise when the
   * remaining credit fell below half the window, else null.
   */
  consume(n: number): number | null {
    this.consumed += n;
    if (this.advertised - this.consumed < this.size / 2) {
      this.advertised = this.consumed + this.size;
      return this.advertised;
    }
    return null;
  }
}
