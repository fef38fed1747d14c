/**
 * Bigger kernel buffers for a unix-socket pipe. A unix stream socket's send buffer is the kernel's
 * default (212,992 bytes on Linux, 8 KiB on macOS): smaller than one 256 KiB frame, so the two ends
 * take turns instead of overlapping (docs/performance.md). Bun has no API for SO_SNDBUF/SO_RCVBUF
 * on its stream sockets; the socket's fd is public, so libc's setsockopt is called through bun:ffi.
 * TCP pipes are left alone: setting SO_SNDBUF there would switch off the kernel's autotuning.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { libcNames } from "../../shared/libc.ts";

/** What the pipe's unix socket asks for, each way. */
export const PIPE_SOCKET_BUFFER = 4 * 1024 * 1024;

/**
 * EDGEPORT_PIPE_BUFFER overrides it (bytes; 0 keeps the kernel's default): for measuring, and for
 * a kernel that misbehaves with it. Anything else than a whole number is an error naming it.
 */
export function pipeBufferSetting(env: string | undefined = process.env.EDGEPORT_PIPE_BUFFER): number {
  if (env === undefined || env === "") return PIPE_SOCKET_BUFFER;
  if (!/^\d+$/.test(env) || Number(env) > 1 << 30) {
    throw new Error(
      `EDGEPORT_PIPE_BUFFER=${JSON.stringify(env)}: expected a number of bytes from 0 (the kernel's default) to 1073741824`,
    );
  }
  return Number(env);
}

interface Libc {
  setsockopt(fd: number, level: number, name: number, val: unknown, len: number): number;
  getsockopt(fd: number, level: number, name: number, val: unknown, len: unknown): number;
}

let libc: Libc | null | undefined;

function load(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== "linux" && process.platform !== "darwin") return libc;
  for (const name of libcNames()) {
    try {
      libc = open(name);
      return libc;
    } catch {
      // try the next name; with none, the kernel's default buffers stay
    }
  }
  return libc;
}

function open(name: string): Libc {
  const lib = dlopen(name, {
    setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    getsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  });
  return lib.symbols as unknown as Libc;
}

const darwin = process.platform === "darwin";
const SOL_SOCKET = darwin ? 0xffff : 1;
const SO_SNDBUF = darwin ? 0x1001 : 7;
const SO_RCVBUF = darwin ? 0x1002 : 8;
// Linux: as root (the forwarder in a VM usually is), the FORCE variants pass net.core.wmem_max
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;

/** The kernel's idea of one buffer size of fd (Linux reports twice what was asked: its bookkeeping). */
function get(l: Libc, fd: number, name: number): number {
  const v = new Int32Array(1);
  const len = new Uint32Array([4]);
  return l.getsockopt(fd, SOL_SOCKET, name, ptr(v), ptr(len)) === 0 ? v[0]! : -1;
}

export interface BufferResult {
  /** send and receive buffer as the kernel reports them afterwards, -1 when unknown */
  send: number;
  receive: number;
}

/**
 * Asks for `bytes` of send and receive buffer on a unix socket. Never throws: where it cannot be
 * done the socket keeps the kernel's defaults, and the result says what it has.
 */
export function growSocketBuffers(fd: number | undefined, bytes: number): BufferResult | null {
  if (fd === undefined || fd < 0 || bytes <= 0) return null;
  const l = load();
  if (!l) return null;
  const v = new Int32Array([bytes]);
  for (const [force, plain] of [
    [SO_SNDBUFFORCE, SO_SNDBUF],
    [SO_RCVBUFFORCE, SO_RCVBUF],
  ] as const) {
    const forced = !darwin && process.getuid?.() === 0 && l.setsockopt(fd, SOL_SOCKET, force, ptr(v), 4) === 0;
    if (!forced) l.setsockopt(fd, SOL_SOCKET, plain, ptr(v), 4);
  }
  return { send: get(l, fd, SO_SNDBUF), receive: get(l, fd, SO_RCVBUF) };
}
