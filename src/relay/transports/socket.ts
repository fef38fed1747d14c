/**
 * Socket pipes through Bun's sockets: unix and tcp (listen or connect), and Windows named pipes
 * (npipe:, which Bun opens through its unix-path sockets).
 */
import { existsSync, unlinkSync } from "node:fs";
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";
import { EdgeportError, errnoOf } from "../../shared/errors.ts";
import type { Pipe, PipeHandlers } from "../mux/pipe.ts";
import type { OnActivity, OnPipe, PipeListener } from "./types.ts";
import { prepareUnixPath, tuneUnixPipe } from "./unix.ts";
import { formatTransportUrl, type TransportUrl } from "./url.ts";

type SocketUrl = Extract<TransportUrl, { kind: "unix" | "tcp" | "npipe" }>;

interface SockState {
  h: PipeHandlers | null;
  closed: boolean;
  activity: OnActivity;
}

function socketPipe(s: Socket<SockState>, description: string): Pipe {
  return {
    description,
    write: (d) => s.write(d),
    close: () => s.end(),
  };
}

const pipeSocketHandlers = {
  data(s: Socket<SockState>, chunk: Uint8Array) {
    s.data.activity();
    s.data.h?.data(chunk);
  },
  drain(s: Socket<SockState>) {
    s.data.h?.drain();
  },
  end(s: Socket<SockState>) {
    s.end();
  },
  close(s: Socket<SockState>, err?: Error) {
    if (s.data.closed) return;
    s.data.closed = true;
    s.data.h?.closed(err ? (errnoOf(err) ?? err.message) : undefined);
  },
  error() {
    // close follows
  },
};

const fdOf = (sock: Socket<SockState>) => (sock as unknown as { fd?: number }).fd;

/** Where Bun's socket goes: an address, or a socket this process already holds (its fd). */
type Target = { unix: string } | { hostname: string; port: number } | { fd: number };

function socketTarget(u: SocketUrl): Target {
  return u.kind === "tcp" ? { hostname: u.host, port: u.port } : { unix: u.path };
}

/** Connects (or adopts) one socket pipe, handed to onPipe; rejects with E_DIAL naming the cause. */
async function connectPipe(
  target: Target,
  description: string,
  onPipe: OnPipe,
  activity: OnActivity,
  tune: boolean,
): Promise<void> {
  const state: SockState = { h: null, closed: false, activity };
  try {
    await Bun.connect<SockState>({
      ...target,
      data: state,
      socket: {
        ...pipeSocketHandlers,
        open(sock: Socket<SockState>) {
          if (tune) tuneUnixPipe(fdOf(sock), description);
          sock.data.h = onPipe(socketPipe(sock, description));
        },
      },
    } as unknown as Parameters<typeof Bun.connect<SockState>>[0]);
  } catch (e) {
    const verb = "fd" in target ? "use" : "connect to";
    throw new EdgeportError("E_DIAL", `cannot ${verb} ${description}: ${errnoOf(e) ?? (e as Error).message}`, {
      cause: e,
    });
  }
}

/** Listens (or adopts a listening socket); each accepted connection becomes a pipe. */
function listenPipe(
  target: Target,
  description: string,
  onPipe: OnPipe,
  activity: OnActivity,
  o: { tune: boolean; peer: (sock: Socket<SockState>) => string },
): TCPSocketListener<SockState> | UnixSocketListener<SockState> {
  try {
    return Bun.listen<SockState>({
      ...target,
      socket: {
        ...pipeSocketHandlers,
        open(sock: Socket<SockState>) {
          sock.data = { h: null, closed: false, activity };
          if (o.tune) tuneUnixPipe(fdOf(sock), description);
          sock.data.h = onPipe(socketPipe(sock, o.peer(sock)));
        },
      },
    } as unknown as Parameters<typeof Bun.listen<SockState>>[0]);
  } catch (e) {
    throw new EdgeportError("E_DIAL", `cannot listen on ${description}: ${errnoOf(e) ?? (e as Error).message}`, {
      cause: e,
    });
  }
}

/** Connects one socket pipe (handed to onPipe). Resolves once connected; rejects with E_DIAL naming the cause. */
export function dialSocket(u: SocketUrl, onPipe: OnPipe, activity: OnActivity): Promise<void> {
  return connectPipe(socketTarget(u), formatTransportUrl(u), onPipe, activity, u.kind === "unix");
}

/** Listens for socket pipes; each accepted connection becomes a pipe. */
export function listenSocket(u: SocketUrl, onPipe: OnPipe, activity: OnActivity): PipeListener {
  const description = formatTransportUrl(u);
  if (u.kind === "unix") prepareUnixPath(u.path);
  // a unix socket is created owner-only under umask 077: no window in which another user could connect
  const oldMask = u.kind === "unix" ? process.umask(0o077) : null;
  let listener: TCPSocketListener<SockState> | UnixSocketListener<SockState>;
  try {
    listener = listenPipe(socketTarget(u), description, onPipe, activity, {
      tune: u.kind === "unix",
      peer: (sock) => (u.kind === "tcp" ? `${description} from ${sock.remoteAddress}` : description),
    });
  } finally {
    if (oldMask !== null) process.umask(oldMask);
  }
  const address =
    u.kind === "tcp"
      ? formatTransportUrl({ ...u, port: (listener as unknown as TCPSocketListener<SockState>).port })
      : description;
  return {
    address,
    close: () => {
      listener.stop(true);
      if (u.kind === "unix" && existsSync(u.path)) unlinkSync(u.path);
    },
  };
}

/** Adopts a connected stream socket by its fd (vsock, an inherited fd) as one pipe. */
export function adoptConnected(fd: number, description: string, onPipe: OnPipe, activity: OnActivity): Promise<void> {
  return connectPipe({ fd }, description, onPipe, activity, false);
}

/** Adopts a listening stream socket by its fd (vsock, an inherited fd); each accepted connection becomes a pipe. */
export function adoptListener(fd: number, description: string, onPipe: OnPipe, activity: OnActivity): PipeListener {
  const listener = listenPipe({ fd }, description, onPipe, activity, { tune: false, peer: () => description });
  return { address: description, close: () => listener.stop(true) };
}
