/**
 * A UDP flow as a channel endpoint. Records from the peer are decoded and each payload is handed
 * to `send` (a UDP socket); datagrams from the local side are encoded into records and queued on
 * the channel. UDP never waits: when the channel cannot take more (no credit, pipe busy), or
 * before the channel exists and the small pending queue is full, the datagram is dropped and
 * counted, so a slow or absent peer holds at most a bounded amount of memory and never blocks
 * another flow.
 */
import type { Channel, Endpoint } from "../mux/channel.ts";
import { encodeRecord, MAX_DATAGRAM, RecordDecoder } from "../mux/datagram.ts";

/** Unsent bytes a flow may hold on its channel before new datagrams are dropped. */
export const FLOW_QUEUE_CAP = 128 * 1024;
/** Datagrams held while the channel is being opened. */
export const FLOW_PENDING_MAX = 64;

export interface DatagramCounters {
  /** datagrams from the local side put on the pipe */
  sent: number;
  /** datagrams from the pipe handed to the local socket */
  received: number;
  /** datagrams dropped because the flow could not take them */
  dropped: number;
  bytesSent: number;
  bytesReceived: number;
}

export class DatagramEndpoint implements Endpoint {
  private ch: Channel | null = null;
  private readonly decoder = new RecordDecoder();
  private pending: { payload: Uint8Array; ip?: Uint8Array; port?: number }[] = [];
  private paused = false;
  private ended = false;
  readonly counters: DatagramCounters = { sent: 0, received: 0, dropped: 0, bytesSent: 0, bytesReceived: 0 };

  /**
   * @param send hands one payload to the local UDP socket
   * @param onEnd called once when the flow ends (by the peer, the pipe, or `end()`), with a reason when it failed
   */
  constructor(
    private readonly send: (payload: Uint8Array) => void,
    private readonly onEnd: (reason: string | null) => void,
  ) {}

  get isEnded(): boolean {
    return this.ended;
  }

  /** The channel exists: datagrams held meanwhile go out. */
  attach(ch: Channel): void {
    if (this.ended) return;
    this.ch = ch;
    const held = this.pending;
    this.pending = [];
    for (const d of held) this.deliver(d.payload, d.ip, d.port);
  }

  /** A datagram from the local side; false when it was dropped. */
  deliver(payload: Uint8Array, ip?: Uint8Array, port?: number): boolean {
    if (this.ended) return false;
    // IPv6 allows 20 bytes more than the format (and an IPv4 receiver) can carry
    if (payload.length > MAX_DATAGRAM) return this.drop();
    const ch = this.ch;
    if (!ch) {
      if (this.pending.length >= FLOW_PENDING_MAX) return this.drop();
      this.pending.push({ payload: payload.slice(), ip, port });
      return true;
    }
    if (this.paused || ch.closed || ch.sendQueued >= FLOW_QUEUE_CAP) return this.drop();
    ch.localData(encodeRecord(payload, ip, port));
    this.counters.sent++;
    this.counters.bytesSent += payload.length;
    return true;
  }

  /** Ends the flow from the local side (idle timeout, eviction, listener closed): Shutdown then Close. */
  end(): void {
    if (this.ended) return;
    this.finish(null);
    this.ch?.localClosed();
  }

  /** Ends the flow before it had a channel (the pipe did not come up). */
  fail(reason: string): void {
    if (!this.ended) this.finish(reason);
  }

  // ---- Endpoint: called by the channel ----

  write(data: Uint8Array): number {
    if (this.ended) return -1;
    let records: ReturnType<RecordDecoder["push"]>;
    try {
      records = this.decoder.push(data);
    } catch (e) {
      const reason = (e as Error).message;
      const ch = this.ch;
      this.finish(reason);
      ch?.abort(reason);
      return -1;
    }
    for (const r of records) {
      this.counters.received++;
      this.counters.bytesReceived += r.payload.length;
      this.send(r.payload);
    }
    return data.length;
  }

  shutdown(): void {
    // the peer will send no more datagrams; ours may still go until the channel closes
  }

  close(): void {
    if (!this.ended) this.finish(null);
  }

  reset(): void {
    if (!this.ended) this.finish(this.ch?.failure ?? "flow reset");
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  private drop(): false {
    this.counters.dropped++;
    return false;
  }

  private finish(reason: string | null): void {
    this.ended = true;
    this.pending = [];
    this.onEnd(reason);
  }
}
