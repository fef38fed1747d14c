/**
 * Pipe transports, one file a kind: socket.ts (unix, tcp, npipe), vsock.ts (AF_VSOCK), fd.ts (an
 * inherited socket), exec.ts (a spawned process's stdio), stdio.ts (our own stdio). dialPipe is
 * the host's side, listenPipes the forwarder's.
 */
import { EdgeportError } from "../../shared/errors.ts";
import { spawnPipe } from "./exec.ts";
import { dialFd, listenFd } from "./fd.ts";
import { dialSocket, listenSocket } from "./socket.ts";
import { stdioPipe } from "./stdio.ts";
import type { OnActivity, OnPipe, PipeListener } from "./types.ts";
import { formatTransportUrl, type TransportUrl } from "./url.ts";
import { dialVsock, listenVsock } from "./vsock.ts";

export type { OnActivity, OnPipe, PipeListener } from "./types.ts";
export { prepareUnixPath } from "./unix.ts";

const idle: OnActivity = () => {};

/**
 * Connects one pipe (handed to onPipe). Resolves once connected; rejects with E_DIAL naming the
 * cause. `activity` is called on every chunk received (--spin's hook).
 */
export async function dialPipe(u: TransportUrl, onPipe: OnPipe, activity: OnActivity = idle): Promise<void> {
  if (u.kind === "exec") return spawnPipe(u.command, u.args, formatTransportUrl(u), onPipe, activity);
  if (u.kind === "stdio") throw new EdgeportError("E_BAD_URL", "stdio: is a listen-side transport (the forwarder's)");
  if (u.kind === "vsock") return dialVsock(u, onPipe, activity);
  if (u.kind === "fd") return dialFd(u.fd, onPipe, activity);
  return dialSocket(u, onPipe, activity);
}

/** Listens for pipes; each accepted connection becomes a pipe. stdio: yields exactly one. */
export function listenPipes(u: TransportUrl, onPipe: OnPipe, activity: OnActivity = idle): PipeListener {
  if (u.kind === "stdio") return stdioPipe(onPipe, activity);
  if (u.kind === "exec") throw new EdgeportError("E_BAD_URL", "exec: is a connect-side transport (the host's)");
  if (u.kind === "vsock") return listenVsock(u, onPipe, activity);
  if (u.kind === "fd") return listenFd(u.fd, onPipe, activity);
  return listenSocket(u, onPipe, activity);
}
