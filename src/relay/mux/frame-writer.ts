/**
 * The session's writer: control frames first, then channels' Data round robin, moved into the
 * write queue in batches and written whenever the pipe takes them. One pass per microtask; a full
 * pipe stops it until `drained()`.
 */
import type { Channel } from "./channel.ts";
import type { CloseKind } from "./close-reason.ts";
import { encodeDataHeader } from "./codec.ts";
import type { Pipe } from "./pipe.ts";
import { WriteQueue } from "./write-queue.ts";

/** The writer moves frames into the write queue until it holds this many bytes. */
const WRITE_BATCH = 256 * 1024;
/** A peer that makes us queue this many control bytes while it does not read is cut off. */
export const MAX_CONTROL_BACKLOG = 4 * 1024 * 1024;

export interface FrameWriterHost {
  /** the session ended: nothing more is written */
  closed(): boolean;
  /** handshake (and authentication) done: Data frames may go out */
  ready(): boolean;
  fail(kind: CloseKind, detail: string): void;
}

export class FrameWriter {
  private pipe: Pipe | null = null;
  private ctrl: Uint8Array[] = [];
  private ctrlBytes = 0;
  private readonly out = new WriteQueue();
  private blocked = false;
  private pumpQueued = false;
  private ring: Channel[] = [];

  constructor(private readonly host: FrameWriterHost) {}

  /** Starts writing on a connected pipe, `first` (the handshake) ahead of everything. */
  start(pipe: Pipe, first: Uint8Array): void {
    this.pipe = pipe;
    this.out.push(first);
    this.pump();
  }

  /** Queues a control frame; a peer that lets too many pile up fails the session. */
  control(frame: Uint8Array): void {
    this.ctrl.push(frame);
    this.ctrlBytes += frame.length;
    if (this.ctrlBytes > MAX_CONTROL_BACKLOG) {
      this.host.fail(
        "protocol",
        `more than ${MAX_CONTROL_BACKLOG} bytes of control frames queued while the peer does not read`,
      );
      return;
    }
    this.schedulePump();
  }

  /** The channel has data and maybe credit: consider it for the next write. */
  schedule(ch: Channel): void {
    if (!ch.queued && ch.hasSendable()) {
      ch.queued = true;
      this.ring.push(ch);
      this.schedulePump();
    }
  }

  /** The pipe takes bytes again. */
  drained(): void {
    this.blocked = false;
    this.pump();
  }

  /** The session ended: what was queued is dropped. */
  clear(): void {
    this.ring = [];
    this.ctrl = [];
    this.ctrlBytes = 0;
  }

  private schedulePump(): void {
    if (this.pumpQueued || this.blocked || !this.pipe) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.pipe && !this.host.closed() && !this.blocked) {
      if (this.out.bytes === 0) this.fill();
      if (this.out.bytes === 0) return;
      const { written, full } = this.out.writeNext((buf) => this.pipe!.write(buf));
      if (written < 0) return this.host.fail("pipe-error", "closed while writing");
      if (full) {
        this.blocked = true;
        return;
      }
    }
  }

  private takeControl(): void {
    for (const c of this.ctrl) this.out.push(c);
    this.ctrl = [];
    this.ctrlBytes = 0;
  }

  /** Moves control frames, then Data frames round robin, into the write queue. */
  private fill(): void {
    this.takeControl();
    if (!this.host.ready()) return;
    while (this.out.bytes < WRITE_BATCH && this.ring.length > 0) {
      const ch = this.ring.shift()!;
      ch.queued = false;
      if (!ch.hasSendable()) continue;
      const pieces = ch.takePayload();
      this.out.push(
        encodeDataHeader(
          ch.id,
          pieces.reduce((n, p) => n + p.length, 0),
        ),
      );
      for (const p of pieces) this.out.push(p);
      // takePayload may have queued a Shutdown: it must follow this data
      this.takeControl();
      if (ch.hasSendable()) {
        ch.queued = true;
        this.ring.push(ch);
      }
    }
  }
}
