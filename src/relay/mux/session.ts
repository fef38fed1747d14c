/**
 * A mux session over one pipe: handshake, optional authentication, channels and keepalive; its
 * frames go out through a FrameWriter (frame-writer.ts). The pipe is injected.
 */
import { randomBytes } from "node:crypto";
import type { ConsolaInstance } from "consola";
import { safe } from "../../shared/log.ts";
import { Channel, type ChannelHost, type Endpoint } from "./channel.ts";
import { type CloseKind, type CloseReason, closeReason, formatCloseReason } from "./close-reason.ts";
import {
  type Destination,
  encodeAuth,
  encodeOpen,
  encodeOpenResult,
  encodePing,
  type Frame,
  FrameDecoder,
  ProtocolError,
} from "./codec.ts";
import {
  CONN_MULTIPLEXED,
  EDGEPORT_WINDOW,
  EDGEPORT_WINDOW_MAX,
  EXT_OPEN_RESULT,
  EXT_PING,
  EXTENSIONS,
  OPEN_ERROR,
  OPEN_FORBIDDEN,
  OPEN_OK,
  WINDOW_GROWTH_BUDGET,
} from "./constants.ts";
import { FrameWriter } from "./frame-writer.ts";
import {
  authMac,
  authStart,
  checkProof,
  encodeHandshake,
  encodeHello,
  HandshakeReader,
  type HelloPayload,
  type Negotiated,
  negotiate,
} from "./handshake.ts";
import { Keepalive } from "./keepalive.ts";
import { type PeerFrameTarget, routePeerFrame } from "./peer-frames.ts";
import type { Pipe, PipeHandlers, PipeSettings } from "./pipe.ts";
import { WindowBudget } from "./window.ts";

export type { Pipe, PipeHandlers, PipeSettings };

export type Role = "host" | "vm";

export interface SessionOptions {
  role: Role;
  pipe?: PipeSettings;
  /** the acceptor side: a channel was opened by the peer */
  onOpen?: (ch: Channel, dest: Destination) => void;
  onReady?: (s: Session) => void;
  onClosed?: (s: Session, reason: CloseReason) => void;
  log?: ConsolaInstance;
  version?: string;
}

export class Session implements ChannelHost {
  readonly channels = new Map<number, Channel>();
  state: "handshake" | "auth" | "ready" | "closed" = "handshake";
  /** why it ended, once it has */
  ended: CloseReason | null = null;
  negotiated: Negotiated | null = null;
  peer: HelloPayload | null = null;
  private pipe: Pipe | null = null;
  private readonly hello: HelloPayload;
  private readonly hs = new HandshakeReader();
  // payloads come out as views of the received chunks, as they arrive: no copy, no wait for a whole frame
  private readonly decoder = new FrameDecoder(undefined, true);
  private readonly writer = new FrameWriter({
    closed: () => this.state === "closed",
    ready: () => this.state === "ready",
    fail: (kind, detail) => this.fail(kind, detail),
  });
  /** the host counts ids up from 0, the VM down from 0xFFFFFFFF (vpnkit's convention), so they never meet */
  private nextId: number;
  private readonly keepalive: Keepalive;
  /** what all channels' windows may grow by together: bounds what grown windows hold */
  private readonly windowBudget = new WindowBudget(WINDOW_GROWTH_BUDGET);
  private readonly p: PipeSettings;

  constructor(private readonly o: SessionOptions) {
    const p = o.pipe ?? {};
    if (p.plain && p.secret) throw new Error("a plain vpnkit session cannot use a pipe secret");
    this.p = p;
    this.keepalive = new Keepalive(p, {
      handshaking: () => this.state === "handshake" || this.state === "auth",
      peerPings: () => !!this.negotiated?.ext.has(EXT_PING),
      ping: (nonce) => this.sendControl(encodePing(nonce)),
      dead: (detail) => this.fail("dead", detail),
    });
    this.nextId = o.role === "vm" ? 0xffffffff : 0;
    this.hello = {
      edgeport: 1,
      version: o.version,
      role: o.role,
      window: p.window ?? EDGEPORT_WINDOW,
      ext: [...EXTENSIONS],
      auth: !!p.secret,
      nonce: randomBytes(16).toString("hex"),
    };
  }

  get description(): string {
    return this.pipe?.description ?? "pipe";
  }

  /** Where routePeerFrame sends what is not a channel's own frame. */
  private readonly frameTarget: PeerFrameTarget = {
    channel: (id) => this.channels.get(id),
    open: (id, dest, connType) => this.onPeerOpen(id, dest, connType),
    pong: (nonce) => this.sendControl(encodePing(nonce, true)),
    protocolError: (message) => this.fail("protocol", message),
    unknown: (code) => this.o.log?.debug(`ignoring frame with unknown command ${code}`),
  };

  /** Handlers to give the transport; data may arrive before start(). */
  readonly handlers: PipeHandlers = {
    data: (chunk) => this.receive(chunk),
    drain: () => this.writer.drained(),
    closed: (error) => (error ? this.fail("pipe-error", error) : this.fail("peer-closed")),
  };

  /** Starts the session on a connected pipe: writes the handshake at once. */
  start(pipe: Pipe): void {
    this.pipe = pipe;
    this.keepalive.start();
    this.writer.start(pipe, this.p.plain ? encodeHandshake(new Uint8Array(0)) : encodeHello(this.hello));
  }

  // ---- opener side ----

  /** Opens a channel to dest for a local endpoint (the host's connections; the VM's control requests). The session must be ready. */
  open(dest: Destination, ep: Endpoint): Channel {
    if (this.state !== "ready") throw new Error(`session is ${this.state}, not ready`);
    const step = (id: number) => (this.o.role === "vm" ? (id - 1) >>> 0 : (id + 1) >>> 0);
    let id = this.nextId;
    while (this.channels.has(id)) id = step(id);
    this.nextId = step(id);
    const ch = this.newChannel(id, dest);
    this.channels.set(id, ch);
    this.sendControl(encodeOpen(id, dest, CONN_MULTIPLEXED));
    if ((this.state as Session["state"]) === "closed") {
      // that very frame failed the pipe (its control backlog), which dropped the channel before
      // it had an endpoint: the local socket is reset here
      ep.reset();
      return ch;
    }
    ch.attach(ep);
    return ch;
  }

  private newChannel(id: number, dest: Destination): Channel {
    const n = this.negotiated!;
    return new Channel(id, dest, n.recvWindow, this, { max: n.recvWindowMax, budget: this.windowBudget });
  }

  /** One line for logs: what kind of peer, which window and extensions. */
  describePeer(): string {
    const n = this.negotiated;
    if (!n) return "handshake not finished";
    if (!n.edgeportPeer) return "plain vpnkit peer, window 64 KiB, no extensions";
    return `edgeport peer ${safe(this.peer?.version ?? "", 64)}, window ${n.recvWindow} B (up to ${n.recvWindowMax} B), extensions ${[...n.ext].join(",") || "none"}`;
  }

  /** True when the peer replies to every Open with an open-result frame. */
  get hasOpenResult(): boolean {
    return !!this.negotiated?.ext.has(EXT_OPEN_RESULT);
  }

  // ---- acceptor side ----

  /** Accepts a channel the peer opened, with the dialled local endpoint. */
  accept(ch: Channel, ep: Endpoint): void {
    if (this.state === "closed" || ch.released || ch.closed) {
      ep.close();
      return;
    }
    ch.attach(ep);
    if (this.hasOpenResult) this.sendControl(encodeOpenResult(ch.id, OPEN_OK, ""));
  }

  /** Refuses a channel the peer opened: an open-result (when negotiated) and a Close. */
  reject(ch: Channel, status: number, reason: string): void {
    if (this.hasOpenResult && !ch.closed) this.sendControl(encodeOpenResult(ch.id, status, reason));
    ch.abort(reason);
  }

  /** Closes the pipe from this end; `why` is for the log (e.g. "relay stopping"). */
  close(why = ""): void {
    this.fail("local", why);
  }

  // ---- ChannelHost ----

  sendControl(frame: Uint8Array): void {
    if (this.state !== "closed") this.writer.control(frame);
  }

  schedule(ch: Channel): void {
    this.writer.schedule(ch);
  }

  release(ch: Channel): void {
    if (this.channels.get(ch.id) === ch) this.channels.delete(ch.id);
  }

  protocolError(message: string): void {
    this.fail("protocol", message);
  }

  // ---- receive path ----

  private receive(chunk: Uint8Array): void {
    if (this.state === "closed") return;
    this.keepalive.heard();
    try {
      if (this.state === "handshake") {
        const got = this.hs.push(chunk);
        if (!got) return;
        this.onHandshake(got.hello);
        if ((this.state as Session["state"]) === "closed") return;
        if (got.rest.length > 0) this.dispatch(this.decoder.push(got.rest.take(got.rest.length)));
        return;
      }
      this.dispatch(this.decoder.push(chunk));
    } catch (e) {
      this.fail(e instanceof ProtocolError ? "protocol" : "internal", (e as Error).message);
    }
  }

  private onHandshake(announced: HelloPayload | null): void {
    // a plain end ignores whatever the peer announced, as vpnkit does
    const peer = this.p.plain ? null : announced;
    this.peer = peer;
    this.negotiated = negotiate(this.hello, peer, this.p.windowMax ?? EDGEPORT_WINDOW_MAX);
    const next = authStart(!!this.p.secret, peer, this.negotiated);
    if (typeof next === "object") return this.fail("auth", next.refuse);
    if (next === "prove") {
      this.state = "auth";
      this.sendControl(encodeAuth(authMac(this.p.secret!, this.hello, peer!)));
      return;
    }
    this.becomeReady();
  }

  private becomeReady(): void {
    this.state = "ready";
    this.o.onReady?.(this);
  }

  private dispatch(frames: Frame[]): void {
    for (const f of frames) {
      if (this.state === "closed") return;
      if (this.state === "auth") {
        const refused = checkProof(this.p.secret!, this.peer!, this.hello, f);
        if (refused !== null) return this.fail("auth", refused);
        this.becomeReady();
        continue;
      }
      routePeerFrame(f, this.frameTarget);
    }
  }

  private onPeerOpen(id: number, dest: Destination, connType: number): void {
    if (this.channels.has(id)) return this.protocolError(`open for channel ${id}, which is already open`);
    const ch = this.newChannel(id, dest);
    this.channels.set(id, ch);
    if (connType !== CONN_MULTIPLEXED)
      return this.reject(ch, OPEN_ERROR, `connection type ${connType} is not supported`);
    if (!this.o.onOpen) return this.reject(ch, OPEN_FORBIDDEN, `this ${this.o.role} side does not accept channels`);
    this.o.onOpen(ch, dest);
  }

  // ---- teardown ----

  private fail(kind: CloseKind, detail = ""): void {
    if (this.state === "closed") return;
    this.state = "closed";
    const reason = closeReason(kind, detail);
    this.ended = reason;
    this.keepalive.stop();
    const why = formatCloseReason(reason);
    for (const ch of [...this.channels.values()]) ch.dropped(why);
    this.channels.clear();
    this.writer.clear();
    try {
      this.pipe?.close();
    } catch {
      // already closed
    }
    this.o.onClosed?.(this, reason);
  }
}
