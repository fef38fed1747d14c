/**
 * A socket bound (and for TCP, listening) the way newer dockerd prepares one for its userland
 * proxy's `-use-listen-fd`: made through libc (bun:ffi), so the test holds a plain descriptor to
 * hand on. Linux, IPv4 loopback only: that is all the tests need.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

const libc = dlopen("libc.so.6", {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  dup: { args: [FFIType.i32], returns: FFIType.i32 },
}).symbols;

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;

/** A descriptor bound to 127.0.0.1:port (listening for TCP). Throws when the kernel refuses. */
export function boundSocket(proto: "tcp" | "udp", port: number): number {
  const fd = libc.socket(AF_INET, proto === "tcp" ? SOCK_STREAM : SOCK_DGRAM, 0);
  if (fd < 0) throw new Error("socket() failed");
  // SO_REUSEADDR, as Go sets it on dockerd's listeners
  libc.setsockopt(fd, 1, 2, ptr(new Int32Array([1])), 4);
  // struct sockaddr_in: family (host order), port and address (network order), zero padding
  const sa = new Uint8Array(16);
  const v = new DataView(sa.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  sa.set([127, 0, 0, 1], 4);
  if (libc.bind(fd, ptr(sa), 16) !== 0 || (proto === "tcp" && libc.listen(fd, 128) !== 0)) {
    libc.close(fd);
    throw new Error(`cannot bind 127.0.0.1:${port}/${proto}`);
  }
  return fd;
}

export const closeFd = (fd: number) => libc.close(fd);
/** A second descriptor for the same socket (dockerd keeps its own until the proxy has reported). */
export const dupFd = (fd: number) => libc.dup(fd);
