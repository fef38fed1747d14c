/**
 * The VM's listening sockets through netlink sock_diag (what `ss -l` uses), via libc and bun:ffi:
 * the kernel is asked for TCP sockets in LISTEN and unconnected UDP sockets only, and answers in
 * binary, so a poll costs little however many connections the VM holds. /proc/net/tcp, by
 * contrast, formats every socket as text on each read (measured: about 3 ms of kernel time per
 * read with 1,000 listeners, over 1 % of a core at 250 ms; docs/operations.md).
 *
 * The request and the answer are built and parsed by pure functions; only `openSockDiag` does IO.
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { formatIp } from "../../../shared/address.ts";
import { libcNames } from "../../../shared/libc.ts";
import type { ListenProto, ProcSocket } from "./proc-net.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const MSG_DONTWAIT = 0x40;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const TCP_LISTEN = 10;
const TCP_CLOSE = 7; // an unconnected UDP socket
const HDR = 16;
const DIAG_MSG = 72;

/** The four dumps of one poll: TCP and UDP, IPv4 and IPv6. */
export const DIAG_QUERIES = [
  { family: AF_INET, proto: "tcp" },
  { family: AF_INET6, proto: "tcp" },
  { family: AF_INET, proto: "udp" },
  { family: AF_INET6, proto: "udp" },
] as const;

/** nlmsghdr + inet_diag_req_v2 asking for every socket of this family and protocol in the listening state. */
export function encodeDiagRequest(family: number, proto: ListenProto, seq: number): Uint8Array {
  const b = new Uint8Array(HDR + 56);
  const v = new DataView(b.buffer);
  v.setUint32(0, b.length, true);
  v.setUint16(4, SOCK_DIAG_BY_FAMILY, true);
  v.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, true);
  v.setUint32(8, seq, true);
  b[HDR] = family;
  b[HDR + 1] = proto === "tcp" ? IPPROTO_TCP : IPPROTO_UDP;
  v.setUint32(HDR + 4, 1 << (proto === "tcp" ? TCP_LISTEN : TCP_CLOSE), true);
  return b;
}

export interface DiagChunk {
  sockets: ProcSocket[];
  /** NLMSG_DONE seen: the dump is complete */
  done: boolean;
  /** an NLMSG_ERROR's errno (positive), if one came */
  error?: number;
}

/** The inet_diag_msg records of one datagram from the kernel. */
export function parseDiagChunk(b: Uint8Array, proto: ListenProto, headersOnly = false): DiagChunk {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: DiagChunk = { sockets: [], done: false };
  for (let at = 0; at + HDR <= b.length; ) {
    const len = v.getUint32(at, true);
    const type = v.getUint16(at + 4, true);
    if (len < HDR || at + len > b.length) break;
    if (type === NLMSG_DONE) out.done = true;
    else if (type === NLMSG_ERROR) {
      out.error = -v.getInt32(at + HDR, true);
      out.done = true;
    } else if (!headersOnly && type === SOCK_DIAG_BY_FAMILY && len >= HDR + DIAG_MSG) {
      const m = at + HDR;
      const family = b[m]!;
      const port = v.getUint16(m + 4, false);
      const ip = formatIp(b.slice(m + 8, m + 8 + (family === AF_INET ? 4 : 16)));
      const inode = v.getUint32(m + 68, true);
      if (port > 0) out.sockets.push({ proto, ip, port, inode });
    }
    at += (len + 3) & ~3;
  }
  return out;
}

interface Libc {
  socket(family: number, type: number, proto: number): number;
  send(fd: number, buf: unknown, len: number, flags: number): number;
  recv(fd: number, buf: unknown, len: number, flags: number): number;
  close(fd: number): number;
  __errno_location(): number;
}

function loadLibc(): Libc | null {
  for (const name of libcNames()) {
    try {
      const i32 = FFIType.i32;
      return dlopen(name, {
        socket: { args: [i32, i32, i32], returns: i32 },
        send: { args: [i32, FFIType.ptr, FFIType.u64, i32], returns: FFIType.i64_fast },
        recv: { args: [i32, FFIType.ptr, FFIType.u64, i32], returns: FFIType.i64_fast },
        close: { args: [i32], returns: i32 },
        __errno_location: { args: [], returns: FFIType.ptr },
      }).symbols as unknown as Libc;
    } catch {
      // the next name
    }
  }
  return null;
}

export interface SockDiag {
  /**
   * Every listening TCP and unconnected UDP socket; "same" when the kernel's answer is byte for
   * byte the last one (nothing is parsed or allocated then); null when a dump failed (try again).
   */
  dump(): ProcSocket[] | "same" | null;
  close(): void;
}

const EINTR = 4;

/** A netlink socket for the dumps; null when the kernel or libc cannot give one (the caller reads /proc). */
export function openSockDiag(): SockDiag | null {
  if (process.platform !== "linux") return null;
  const libc = loadLibc();
  if (!libc) return null;
  const fd = libc.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return null;
  const buf = new Uint8Array(256 * 1024);
  const requests = new Map(
    DIAG_QUERIES.map((q) => [`${q.family}/${q.proto}`, encodeDiagRequest(q.family, q.proto, 1)]),
  );
  const errno = () => read.i32(libc.__errno_location() as never, 0);
  let broken = false;
  // the answers of the last poll, raw, one after the other, and this poll's
  let last = new Uint8Array(0);
  let lastLen = -1;
  let raw = new Uint8Array(64 * 1024);
  let rawLen = 0;
  const keep = (n: number) => {
    if (rawLen + n > raw.length) {
      const bigger = new Uint8Array(Math.max(raw.length * 2, rawLen + n));
      bigger.set(raw.subarray(0, rawLen));
      raw = bigger;
    }
    raw.set(buf.subarray(0, n), rawLen);
    rawLen += n;
  };
  /** One dump's datagrams appended to `raw`; false when it broke. */
  function one(family: number, proto: ListenProto): boolean {
    // what a broken dump left behind must not be read as this one's
    if (broken) while (Number(libc!.recv(fd, ptr(buf), buf.length, MSG_DONTWAIT)) > 0);
    broken = true;
    // one seq for every dump, so that equal answers are equal bytes
    const req = requests.get(`${family}/${proto}`)!;
    if (libc!.send(fd, ptr(req), req.length, 0) !== req.length) return false;
    // the kernel fills each datagram as it is read; an empty queue before DONE means the dump broke
    for (;;) {
      const n = Number(libc!.recv(fd, ptr(buf), buf.length, MSG_DONTWAIT));
      if (n < 0 && errno() === EINTR) continue;
      if (n <= 0) return false;
      keep(n);
      const c = parseDiagChunk(buf.subarray(0, n), proto, true);
      if (c.error) return false;
      if (c.done) {
        broken = false;
        return true;
      }
    }
  }
  const same = () => rawLen === lastLen && Buffer.compare(raw.subarray(0, rawLen), last.subarray(0, lastLen)) === 0;
  return {
    dump() {
      rawLen = 0;
      const bounds: { proto: ListenProto; end: number }[] = [];
      for (const q of DIAG_QUERIES) {
        if (!one(q.family, q.proto)) return null;
        bounds.push({ proto: q.proto, end: rawLen });
      }
      if (same()) return "same";
      if (last.length < rawLen) last = new Uint8Array(raw.length);
      last.set(raw.subarray(0, rawLen));
      lastLen = rawLen;
      const all: ProcSocket[] = [];
      let from = 0;
      for (const b of bounds) {
        all.push(...parseDiagChunk(raw.subarray(from, b.end), b.proto).sockets);
        from = b.end;
      }
      return all;
    },
    close() {
      libc.close(fd);
    },
  };
}
