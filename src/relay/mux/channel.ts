/**
 * One multiplexed channel: the bytes between one local socket (the endpoint) and the peer.
 * Flow control both ways; half-close and abort mapped to Shutdown and Close. Its life (states
 * and events) is listed in channel-state.ts.
 */
import { ByteQueue } from "./byte-queue.ts";
import { type ChannelFacts, type ChannelState, channelState } from "./channel-state.ts";
import { type Destination, encodeClose, encodeShutdown, encodeWindow } from "./codec.ts";
import { MAX_SEND_FRAME, PIN_RATIO, SEND_QUEUE_HIGH } from "./constants.ts";
import type { ChannelHost, Endpoint } from "./endpoint.ts";
import { RecvWindow, type RecvWindowOptions, SendCredit } from "./window.ts";

export type { ChannelHost, Endpoint };

export class Channel {
  readonly credit = new SendCredit();
  readonly recv: RecvWindow;
  private readonly sendQ = new ByteQueue();
  private recvQ: Uint8Array[] = [];
  private ep: Endpoint | null = null;
  private attachedOnce = false;
  private localPaused = false;
  private localEnded = false;
  /** the local socket closed cleanly: close the channel once its queued bytes are sent */
  private localGone = false;
  private shutdownSent = false;
  private shutdownReceived = false;
  private epShutdown = false;
  private closeSent = false;
  private closeReceived = false;
  /** the peer's Window arrived: for the opener this means "accepted"; nothing but Close goes before it */
  peerWindowSeen = false;
  queued = false; // in the session's ready ring
  /** why the channel ended, when it ended badly */
  failure: string | null = null;
  onPeerAccepted: (() => void) | null = null;
  onEnded: ((reason: string | null) => void) | null = null;

  constructor(
    readonly id: number,
    readonly dest: Destination,
    recvWindow: number,
    private readonly host: ChannelHost,
    growth: RecvWindowOptions = {},
  ) {
    this.recv = new RecvWindow(recvWindow, growth);
  }

  /** What happened so far, from which the state follows (channel-state.ts). */
  get facts(): ChannelFacts {
    const { attachedOnce, localEnded, peerWindowSeen, shutdownSent, shutdownReceived, closeSent, closeReceived } = this;
    return { attachedOnce, localEnded, peerWindowSeen, shutdownSent, shutdownReceived, closeSent, closeReceived };
  }

  get state(): ChannelState {
    return channelState(this.facts);
  }

  get closed(): boolean {
    return this.closeSent;
  }

  get released(): boolean {
    return this.closeSent && this.closeReceived;
  }

  /** Bytes from the local side not yet sent to the peer. */
  get sendQueued(): number {
    return this.sendQ.length;
  }

  /** Bytes held in this channel's queues (memory accounting and tests). */
  get bufferedBytes(): number {
    return this.sendQ.length + this.recv.buffered;
  }

  /**
   * Attaches the local socket and advertises our receive window. A Shutdown that came while the
   * acceptor dialled is applied to the socket now.
   */
  attach(ep: Endpoint): void {
    this.ep = ep;
    this.attachedOnce = true;
    this.host.sendControl(encodeWindow(this.id, this.recv.open()));
    if (this.shutdownReceived) this.flushRecv();
  }

  // ---- events from the local endpoint ----

  localData(chunk: Uint8Array): void {
    if (this.localEnded || this.closeSent) return;
    this.sendQ.push(chunk);
    if (this.sendQ.length >= SEND_QUEUE_HIGH && !this.localPaused) {
      this.localPaused = true;
      this.ep?.pause();
    }
    this.host.schedule(this);
  }

  localEnd(): void {
    if (this.localEnded) return;
    this.localEnded = true;
    this.maybeShutdown();
  }

  localDrain(): void {
    this.flushRecv();
  }

  /**
   * The local socket is gone. With an error (ECONNRESET...) it is an abort: the peer gets a
   * Close at once. Without one it is a clean close (Bun reports the remote FIN this way once we
   * had shut down our side): what is queued still goes out, then Shutdown and Close.
   */
  localClosed(error?: string): void {
    if (!this.ep) return;
    this.ep = null;
    this.dropRecv();
    if (error) {
      if (!this.failure) this.failure = error;
      this.sendClose();
      return;
    }
    this.localGone = true;
    this.localEnded = true;
    this.maybeShutdown();
  }

  // ---- for the session's writer ----

  hasSendable(): boolean {
    return !this.closeSent && this.sendQ.length > 0 && this.credit.available > 0;
  }

  /** Takes the next Data payload (bounded by credit and frame size), as one or more pieces. */
  takePayload(): Uint8Array[] {
    const n = Math.min(this.sendQ.length, this.credit.available, MAX_SEND_FRAME);
    // views of the chunks the socket delivered: the bytes are copied only by the kernel
    const payload = this.sendQ.takeViews(n);
    this.credit.consume(n);
    if (this.localPaused && this.sendQ.length < SEND_QUEUE_HIGH / 2) {
      this.localPaused = false;
      this.ep?.resume();
    }
    if (this.sendQ.length === 0) this.maybeShutdown();
    return payload;
  }

  // ---- frames from the peer ----

  peerWindow(seq: number): void {
    this.credit.update(seq);
    if (!this.peerWindowSeen) {
      this.peerWindowSeen = true;
      this.onPeerAccepted?.();
      // a FIN (or clean close) of the local socket that came first goes out now
      this.maybeShutdown();
    }
    this.host.schedule(this);
  }

  peerData(payload: Uint8Array): void {
    if (!this.recv.receive(payload.length)) {
      this.host.protocolError(
        `channel ${this.id}: peer sent ${payload.length} bytes past its credit (received ${this.recv.received}, allowed up to ${this.recv.advertised})`,
      );
      return;
    }
    if (this.shutdownReceived || !this.ep || this.closeReceived) {
      // data after Shutdown, or for a channel being torn down: dropped, but credited back
      this.recv.consume(payload.length);
      return;
    }
    // a piece is a view of the chunk it arrived in; a small one is copied, so that what the
    // window allows to wait here (bytes) also bounds the memory it holds (chunks up to 512 KiB)
    this.recvQ.push(payload.buffer.byteLength > PIN_RATIO * payload.length ? payload.slice() : payload);
    this.flushRecv();
  }

  peerShutdown(): void {
    if (this.shutdownReceived) return;
    this.shutdownReceived = true;
    this.flushRecv();
  }

  peerClose(): void {
    if (this.closeReceived) return;
    this.closeReceived = true;
    if (this.ep) {
      if (this.shutdownReceived) {
        // graceful: deliver what is queued, then close
        this.flushRecv();
      } else {
        if (!this.failure) this.failure = "peer closed the channel";
        const ep = this.ep;
        this.ep = null;
        ep.reset();
      }
    }
    this.sendClose();
  }

  /** Ends the channel at once (pipe lost, open refused): the local socket is reset. */
  abort(reason: string): void {
    if (!this.failure) this.failure = reason;
    const ep = this.ep;
    this.ep = null;
    this.dropRecv();
    ep?.reset();
    this.sendClose();
  }

  /** Pipe gone: nothing more can be sent or received. */
  dropped(reason: string): void {
    this.closeReceived = true;
    this.abort(reason);
    this.closeSent = true;
  }

  // ---- internals ----

  private flushRecv(): void {
    const ep = this.ep;
    if (!ep) return;
    while (this.recvQ.length > 0) {
      const chunk = this.recvQ[0]!;
      const n = ep.write(chunk);
      if (n < 0) {
        this.localClosed("local connection closed while writing");
        return;
      }
      if (n > 0) {
        const seq = this.recv.consume(n);
        if (seq !== null && !this.closeSent) this.host.sendControl(encodeWindow(this.id, seq));
      }
      if (n < chunk.length) {
        this.recvQ[0] = chunk.subarray(n);
        return; // resumes on drain
      }
      this.recvQ.shift();
    }
    this.releaseWindow();
    if (this.shutdownReceived && !this.epShutdown) {
      this.epShutdown = true;
      ep.shutdown();
    }
    if (this.closeReceived && this.epShutdown) {
      this.ep = null;
      ep.close();
      this.sendClose();
      return;
    }
    this.maybeClose();
  }

  private maybeShutdown(): void {
    if (this.localEnded && this.peerWindowSeen && !this.shutdownSent && !this.closeSent && this.sendQ.length === 0) {
      this.shutdownSent = true;
      this.host.sendControl(encodeShutdown(this.id));
      if (this.localGone) this.sendClose();
      else this.maybeClose();
    }
  }

  /** Both directions finished: close the socket and the channel. */
  private maybeClose(): void {
    if (this.shutdownSent && this.epShutdown && !this.closeSent) {
      const ep = this.ep;
      this.ep = null;
      ep?.close();
      this.sendClose();
    }
  }

  private sendClose(): void {
    if (!this.closeSent) {
      this.closeSent = true;
      this.sendQ.skip(this.sendQ.length);
      this.host.sendControl(encodeClose(this.id));
      this.onEnded?.(this.failure);
    }
    this.releaseWindow();
    if (this.closeReceived) this.host.release(this);
  }

  /** The local socket is gone: what waited for it is dropped, and counted as handed on. */
  private dropRecv(): void {
    for (const piece of this.recvQ) this.recv.consume(piece.length);
    this.recvQ = [];
  }

  /**
   * A grown window's extra goes back to the session once the channel is closed and holds no received
   * bytes (a graceful close can leave some to write). Releasing again gives nothing: it never grows.
   */
  private releaseWindow(): void {
    if (this.closeSent && this.recvQ.length === 0) this.recv.release();
  }
}
