/**
 * Sockets of families Bun cannot create itself (AF_VSOCK), made with libc through bun:ffi and then
 * handed to Bun by their fd (socket.ts adopts them). Linux only. Connect is non-blocking and
 * polled, so a peer that never answers (a CID with nobody behind it) never blocks the event loop.
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { EdgeportError } from "../../shared/errors.ts";
import { libcNames } from "../../shared/libc.ts";

const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const POLLOUT = 4;
const EINPROGRESS = 115;

/** errno names a user can look up; the rest print as their number. */
const ERRNO: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  13: "EACCES",
  19: "ENODEV",
  22: "EINVAL",
  24: "EMFILE",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  101: "ENETUNREACH",
  104: "ECONNRESET",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};
export const errnoName = (n: number) => ERRNO[n] ?? `errno ${n}`;

interface Libc {
  socket(family: number, type: number, proto: number): number;
  bind(fd: number, addr: unknown, len: number): number;
  listen(fd: number, backlog: number): number;
  connect(fd: number, addr: unknown, len: number): number;
  close(fd: number): number;
  poll(fds: unknown, n: number, timeout: number): number;
  getsockopt(fd: number, level: number, name: number, val: unknown, len: unknown): number;
  __errno_location(): number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  if (process.platform !== "linux") {
    throw new EdgeportError("E_UNSUPPORTED", `this socket family needs Linux (this is ${process.platform})`);
  }
  const errors: string[] = [];
  for (const name of libcNames()) {
    try {
      const i32 = FFIType.i32;
      libc = dlopen(name, {
        socket: { args: [i32, i32, i32], returns: i32 },
        bind: { args: [i32, FFIType.ptr, FFIType.u32], returns: i32 },
        listen: { args: [i32, i32], returns: i32 },
        connect: { args: [i32, FFIType.ptr, FFIType.u32], returns: i32 },
        close: { args: [i32], returns: i32 },
        poll: { args: [FFIType.ptr, FFIType.u64, i32], returns: i32 },
        getsockopt: { args: [i32, i32, i32, FFIType.ptr, FFIType.ptr], returns: i32 },
        __errno_location: { args: [], returns: FFIType.ptr },
      }).symbols as unknown as Libc;
      return libc;
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
    }
  }
  throw new EdgeportError("E_UNSUPPORTED", `no libc reachable through bun:ffi (${errors.join("; ")})`);
}

const errno = (l: Libc) => read.i32(l.__errno_location() as never, 0);

function fail(l: Libc, fd: number, what: string): never {
  const n = errno(l);
  if (fd >= 0) l.close(fd);
  throw new EdgeportError("E_DIAL", `${what}: ${errnoName(n)}`);
}

/** A listening stream socket of `family` bound to `addr` (a sockaddr of that family). */
export function rawListen(family: number, addr: Uint8Array, description: string, backlog = 511): number {
  const l = load();
  const fd = l.socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) fail(l, fd, `cannot create a socket for ${description}`);
  if (l.bind(fd, ptr(addr), addr.length) !== 0) fail(l, fd, `cannot bind ${description}`);
  if (l.listen(fd, backlog) !== 0) fail(l, fd, `cannot listen on ${description}`);
  return fd;
}

/** A connected stream socket of `family` to `addr`; rejects with E_DIAL naming the errno or the timeout. */
export async function rawConnect(
  family: number,
  addr: Uint8Array,
  description: string,
  timeoutMs: number,
): Promise<number> {
  const l = load();
  const fd = l.socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) fail(l, fd, `cannot create a socket for ${description}`);
  if (l.connect(fd, ptr(addr), addr.length) !== 0 && errno(l) !== EINPROGRESS)
    fail(l, fd, `cannot connect to ${description}`);
  const pfd = new Uint8Array(8);
  const view = new DataView(pfd.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, POLLOUT, true);
  const deadline = performance.now() + timeoutMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    view.setInt16(6, 0, true);
    const n = l.poll(ptr(pfd), 1, 0);
    if (n < 0) fail(l, fd, `cannot connect to ${description}`);
    if (n > 0) break;
    if (performance.now() >= deadline) {
      l.close(fd);
      throw new EdgeportError("E_DIAL", `cannot connect to ${description}: ETIMEDOUT (no answer in ${timeoutMs} ms)`);
    }
    await Bun.sleep(wait);
  }
  const err = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (l.getsockopt(fd, SOL_SOCKET, SO_ERROR, ptr(err), ptr(len)) !== 0) fail(l, fd, `cannot connect to ${description}`);
  if (err[0] !== 0) {
    l.close(fd);
    throw new EdgeportError("E_DIAL", `cannot connect to ${description}: ${errnoName(err[0]!)}`);
  }
  return fd;
}

export function closeRaw(fd: number): void {
  load().close(fd);
}
