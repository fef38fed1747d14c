/**
 * A session's liveness: when the peer was last heard, the timer that pings a quiet peer and
 * declares a silent one dead. The session tells it what it hears and which phase it is in.
 */
import type { PipeSettings } from "./pipe.ts";

/** What the keepalive asks of its session. */
export interface KeepaliveHooks {
  /** true while the handshake (or the proof of the secret) is not finished */
  handshaking: () => boolean;
  /** true when the peer answers pings (a vpnkit peer never pings) */
  peerPings: () => boolean;
  ping: (nonce: number) => void;
  dead: (detail: string) => void;
}

export class Keepalive {
  private lastRx = Date.now();
  private timer: ReturnType<typeof setInterval> | null = null;
  private pingNonce = 0;
  /** ping a peer this quiet (0: never ping, never declare a ready session dead) */
  private readonly keepaliveMs: number;
  /** declare a peer this silent dead, also during the handshake */
  private readonly deadAfterMs: number;

  constructor(
    settings: Pick<PipeSettings, "keepaliveMs" | "deadAfterMs">,
    private readonly o: KeepaliveHooks,
  ) {
    this.keepaliveMs = settings.keepaliveMs ?? 5000;
    this.deadAfterMs = settings.deadAfterMs ?? 15000;
  }

  start(): void {
    this.lastRx = Date.now();
    const tick = Math.max(10, Math.min(this.keepaliveMs || this.deadAfterMs, this.deadAfterMs) / 2);
    this.timer = setInterval(() => this.onTick(), tick);
  }

  /** Bytes came from the peer. */
  heard(): void {
    this.lastRx = Date.now();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private onTick(): void {
    const silent = Date.now() - this.lastRx;
    if (this.o.handshaking()) {
      if (silent > this.deadAfterMs) this.o.dead(`the peer did not complete the handshake within ${silent} ms`);
      return;
    }
    // silence is only a failure with a peer that answers pings
    if (!this.o.peerPings() || this.keepaliveMs <= 0) return;
    if (silent > this.deadAfterMs) return this.o.dead(`no bytes from the peer for ${silent} ms (keepalive)`);
    if (silent >= this.keepaliveMs) this.o.ping(++this.pingNonce);
  }
}
