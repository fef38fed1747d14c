/**
 * The frame codec: pure bytes in, frames out (and back). No sockets, no logs.
 * Layout: docs/protocol.md and ../shared/design/vpnkit-wire.md.
 */
import { ByteQueue } from "./byte-queue.ts";
import {
  AUTH_MAC_LEN,
  CMD_AUTH,
  CMD_CLOSE,
  CMD_DATA,
  CMD_OPEN,
  CMD_OPEN_RESULT,
  CMD_PING,
  CMD_PONG,
  CMD_SHUTDOWN,
  CMD_WINDOW,
  CONN_MULTIPLEXED,
  HDR_BASE,
  HDR_DATA,
  HDR_PING,
  HDR_WINDOW,
  MAX_REASON_LEN,
  MAX_RECV_FRAME,
  PROTO_TCP,
  PROTO_UDP,
  PROTO_UNIX,
} from "./constants.ts";

export type Destination = { proto: "tcp" | "udp"; ip: Uint8Array; port: number } | { proto: "unix"; path: string };

export type Frame =
  | { cmd: "open"; id: number; connType: number; dest: Destination }
  | { cmd: "close"; id: number }
  | { cmd: "shutdown"; id: number }
  | { cmd: "data"; id: number; payload: Uint8Array }
  | { cmd: "window"; id: number; seq: number }
  | { cmd: "open-result"; id: number; status: number; reason: string }
  | { cmd: "ping"; id: number; nonce: number }
  | { cmd: "pong"; id: number; nonce: number }
  | { cmd: "auth"; id: number; mac: Uint8Array }
  | { cmd: "unknown"; id: number; code: number };

/** A malformed frame stream: the pipe must be closed. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: false });

function header(len: number, cmd: number, id: number): { buf: Uint8Array; dv: DataView } {
  const buf = new Uint8Array(len);
  const dv = new DataView(buf.buffer);
  dv.setUint16(0, len, true);
  dv.setUint8(2, cmd);
  dv.setUint32(3, id >>> 0, true);
  return { buf, dv };
}

function destinationLength(d: Destination): number {
  return d.proto === "unix" ? 3 + enc.encode(d.path).length : 3 + d.ip.length + 2;
}

export function encodeOpen(id: number, dest: Destination, connType = CONN_MULTIPLEXED): Uint8Array {
  const len = HDR_BASE + 1 + destinationLength(dest);
  const { buf, dv } = header(len, CMD_OPEN, id);
  dv.setUint8(7, connType);
  if (dest.proto === "unix") {
    const path = enc.encode(dest.path);
    dv.setUint8(8, PROTO_UNIX);
    dv.setUint16(9, path.length, true);
    buf.set(path, 11);
  } else {
    if (dest.ip.length !== 4 && dest.ip.length !== 16) throw new RangeError("ip must be 4 or 16 bytes");
    dv.setUint8(8, dest.proto === "tcp" ? PROTO_TCP : PROTO_UDP);
    dv.setUint16(9, dest.ip.length, true);
    buf.set(dest.ip, 11);
    dv.setUint16(11 + dest.ip.length, dest.port, true);
  }
  return buf;
}

export const encodeClose = (id: number): Uint8Array => header(HDR_BASE, CMD_CLOSE, id).buf;
export const encodeShutdown = (id: number): Uint8Array => header(HDR_BASE, CMD_SHUTDOWN, id).buf;

/** The 11-byte Data header; the payload follows it on the wire. */
export function encodeDataHeader(id: number, length: number): Uint8Array {
  const { buf, dv } = header(HDR_DATA, CMD_DATA, id);
  dv.setUint32(7, length, true);
  return buf;
}

export function encodeData(id: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HDR_DATA + payload.length);
  out.set(encodeDataHeader(id, payload.length), 0);
  out.set(payload, HDR_DATA);
  return out;
}

function setU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v % 0x1_0000_0000, true);
  dv.setUint32(off + 4, Math.floor(v / 0x1_0000_0000), true);
}
const getU64 = (dv: DataView, off: number): number =>
  dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 0x1_0000_0000;

export function encodeWindow(id: number, seq: number): Uint8Array {
  const { buf, dv } = header(HDR_WINDOW, CMD_WINDOW, id);
  setU64(dv, 7, seq);
  return buf;
}

export function encodeOpenResult(id: number, status: number, reason: string): Uint8Array {
  const r = enc.encode(reason).subarray(0, MAX_REASON_LEN);
  const { buf, dv } = header(HDR_BASE + 3 + r.length, CMD_OPEN_RESULT, id);
  dv.setUint8(7, status);
  dv.setUint16(8, r.length, true);
  buf.set(r, 10);
  return buf;
}

export function encodePing(nonce: number, pong = false): Uint8Array {
  const { buf, dv } = header(HDR_PING, pong ? CMD_PONG : CMD_PING, 0);
  setU64(dv, 7, nonce);
  return buf;
}

export function encodeAuth(mac: Uint8Array): Uint8Array {
  if (mac.length !== AUTH_MAC_LEN) throw new RangeError(`auth mac must be ${AUTH_MAC_LEN} bytes`);
  const { buf } = header(HDR_BASE + AUTH_MAC_LEN, CMD_AUTH, 0);
  buf.set(mac, HDR_BASE);
  return buf;
}

export function encodeFrame(f: Frame): Uint8Array {
  switch (f.cmd) {
    case "open":
      return encodeOpen(f.id, f.dest, f.connType);
    case "close":
      return encodeClose(f.id);
    case "shutdown":
      return encodeShutdown(f.id);
    case "data":
      return encodeData(f.id, f.payload);
    case "window":
      return encodeWindow(f.id, f.seq);
    case "open-result":
      return encodeOpenResult(f.id, f.status, f.reason);
    case "ping":
      return encodePing(f.nonce);
    case "pong":
      return encodePing(f.nonce, true);
    case "auth":
      return encodeAuth(f.mac);
    case "unknown":
      throw new RangeError(`cannot encode unknown command ${f.code}`);
  }
}

function need(hdrlen: number, min: number, what: string): void {
  if (hdrlen < min) throw new ProtocolError(`${what} frame header is ${hdrlen} bytes, needs at least ${min}`);
}

function parseDestination(h: Uint8Array, dv: DataView, hdrlen: number): Destination {
  need(hdrlen, 11, "open");
  const proto = dv.getUint8(8);
  const len = dv.getUint16(9, true);
  if (proto === PROTO_UNIX) {
    need(hdrlen, 11 + len, "open(unix)");
    return { proto: "unix", path: dec.decode(h.subarray(11, 11 + len)) };
  }
  if (proto !== PROTO_TCP && proto !== PROTO_UDP) throw new ProtocolError(`open frame has unknown protocol ${proto}`);
  if (len !== 4 && len !== 16) throw new ProtocolError(`open frame has ip length ${len}, expected 4 or 16`);
  need(hdrlen, 13 + len, "open");
  return {
    proto: proto === PROTO_TCP ? "tcp" : "udp",
    ip: h.slice(11, 11 + len),
    port: dv.getUint16(11 + len, true),
  };
}

/** Parses one frame header (hdrlen bytes, Data payload excluded). */
function parseHeader(h: Uint8Array): Frame | { cmd: "data-header"; id: number; length: number } {
  const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const hdrlen = h.length;
  const cmd = dv.getUint8(2);
  const id = dv.getUint32(3, true);
  switch (cmd) {
    case CMD_OPEN:
      need(hdrlen, 8, "open");
      return { cmd: "open", id, connType: dv.getUint8(7), dest: parseDestination(h, dv, hdrlen) };
    case CMD_CLOSE:
      return { cmd: "close", id };
    case CMD_SHUTDOWN:
      return { cmd: "shutdown", id };
    case CMD_DATA:
      need(hdrlen, HDR_DATA, "data");
      return { cmd: "data-header", id, length: dv.getUint32(7, true) };
    case CMD_WINDOW:
      need(hdrlen, HDR_WINDOW, "window");
      return { cmd: "window", id, seq: getU64(dv, 7) };
    case CMD_OPEN_RESULT: {
      need(hdrlen, 10, "open-result");
      const n = Math.min(dv.getUint16(8, true), hdrlen - 10);
      return { cmd: "open-result", id, status: dv.getUint8(7), reason: dec.decode(h.subarray(10, 10 + n)) };
    }
    case CMD_PING:
    case CMD_PONG:
      need(hdrlen, HDR_PING, "ping");
      return { cmd: cmd === CMD_PING ? "ping" : "pong", id, nonce: getU64(dv, 7) };
    case CMD_AUTH:
      need(hdrlen, HDR_BASE + AUTH_MAC_LEN, "auth");
      return { cmd: "auth", id, mac: h.slice(HDR_BASE, HDR_BASE + AUTH_MAC_LEN) };
    default:
      return { cmd: "unknown", id, code: cmd };
  }
}

/**
 * Incremental decoder: push chunks split or coalesced at any byte boundary, get whole frames.
 * Uses hdrlen (skipping trailing header bytes it does not understand), as a robust reader must.
 */
export class FrameDecoder {
  private q = new ByteQueue();
  private pendingData: { id: number; length: number } | null = null;

  /**
   * @param stream emit a Data frame's payload in pieces as its bytes arrive (views into the
   *   received chunks, never copied); several "data" frames with the same id then make up one
   *   wire frame. Without it every Data frame comes out whole (copied when it spans chunks).
   */
  constructor(
    private readonly maxPayload = MAX_RECV_FRAME,
    private readonly stream = false,
  ) {}

  /** Bytes buffered but not yet part of a whole frame. */
  get buffered(): number {
    return this.q.length;
  }

  push(chunk: Uint8Array): Frame[] {
    this.q.push(chunk);
    const frames: Frame[] = [];
    for (;;) {
      if (this.pendingData) {
        const { id, length } = this.pendingData;
        if (this.stream) {
          if (length > 0 && this.q.length === 0) break;
          const piece = this.q.takeView(length);
          if (piece.length > 0 || length === 0) frames.push({ cmd: "data", id, payload: piece });
          this.pendingData.length -= piece.length;
          if (this.pendingData.length === 0) this.pendingData = null;
          continue;
        }
        if (this.q.length < length) break;
        frames.push({ cmd: "data", id, payload: this.q.take(length) });
        this.pendingData = null;
        continue;
      }
      if (this.q.length < 2) break;
      const lenBytes = this.q.peek(2);
      const hdrlen = lenBytes[0]! | (lenBytes[1]! << 8);
      if (hdrlen < HDR_BASE)
        throw new ProtocolError(`frame header length ${hdrlen} is below the minimum of ${HDR_BASE}`);
      if (this.q.length < hdrlen) break;
      const f = parseHeader(this.q.take(hdrlen));
      if (f.cmd === "data-header") {
        if (f.length > this.maxPayload) {
          throw new ProtocolError(
            `data frame for channel ${f.id} carries ${f.length} bytes, more than the ${this.maxPayload} allowed`,
          );
        }
        this.pendingData = { id: f.id, length: f.length };
      } else {
        frames.push(f);
      }
    }
    return frames;
  }
}
