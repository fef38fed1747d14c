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

function socketTarget(u: SocketUrl): { unix: string } | { hostname: string; port: number } {
  return u.kind === "tcp" ? { hostname: u.host, port: u.port } : { unix: u.path };
}

/** Connects one socket pipe (handed to onPipe). Resolves once connected; rejects with E_DIAL naming the cause. */
export async function dialSocket(u: SocketUrl, onPipe: OnPipe, activity: OnActivity): Promise<void> {
  const description = formatTransportUrl(u);
  const state: SockState = { h: null, closed: false, activity };
  try {
    await Bun.connect<SockState>({
      ...socketTarget(u),
      data: state,
      socket: {
        ...pipeSocketHandlers,
        open(sock) {
          if (u.kind === "unix") tuneUnixPipe(fdOf(sock), description);
          sock.data.h = onPipe(socketPipe(sock, description));
        },
      },
    } as Parameters<typeof Bun.connect<SockState>>[0]);
  } catch (e) {
    throw new EdgeportError("E_DIAL", `cannot connect to ${description}: ${errnoOf(e) ?? (e as Error).message}`, {
      cause: e,
    });
  }
}

/** Listens for socket pipes; each accepted connection becomes a pipe. */
export function listenSocket(u: SocketUrl, onPipe: OnPipe, activity: OnActivity): PipeListener {
  const description = formatTransportUrl(u);
  if (u.kind === "unix") prepareUnixPath(u.path);
  let listener: TCPSocketListener<SockState> | UnixSocketListener<SockState>;
  // a unix socket is created owner-only under umask 077: no window in which another user could connect
  const oldMask = u.kind === "unix" ? process.umask(0o077) : null;
  try {
    listener = Bun.listen<SockState>({
      ...socketTarget(u),
      socket: {
        ...pipeSocketHandlers,
        open(sock) {
          sock.data = { h: null, closed: false, activity };
          const peer = u.kind === "tcp" ? `${description} from ${sock.remoteAddress}` : description;
          if (u.kind === "unix") tuneUnixPipe(fdOf(sock), description);
          sock.data.h = onPipe(socketPipe(sock, peer));
        },
      },
    } as Parameters<typeof Bun.listen<SockState>>[0]);
  } catch (e) {
    throw new EdgeportError("E_DIAL", `cannot listen on ${description}: ${errnoOf(e) ?? (e as Error).message}`, {
      cause: e,
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
export async function adoptConnected(
  fd: number,
  description: string,
  onPipe: OnPipe,
  activity: OnActivity,
): Promise<void> {
  const state: SockState = { h: null, closed: false, activity };
  try {
    await Bun.connect<SockState>({
      fd,
      data: state,
      socket: {
        ...pipeSocketHandlers,
        open(sock: Socket<SockState>) {
          sock.data.h = onPipe(socketPipe(sock, description));
        },
      },
    } as unknown as Parameters<typeof Bun.connect<SockState>>[0]);
  } catch (e) {
    throw new EdgeportError("E_DIAL", `cannot use ${description}: ${errnoOf(e) ?? (e as Error).message}`, { cause: e });
  }
}

/** Adopts a listening stream socket by its fd (vsock, an inherited fd); each accepted connection becomes a pipe. */
export function adoptListener(fd: number, description: string, onPipe: OnPipe, activity: OnActivity): PipeListener {
  let listener: UnixSocketListener<SockState>;
  try {
    listener = Bun.listen<SockState>({
      fd,
      socket: {
        ...pipeSocketHandlers,
        open(sock: Socket<SockState>) {
          sock.data = { h: null, closed: false, activity };
          sock.data.h = onPipe(socketPipe(sock, description));
        },
      },
    } as unknown as Parameters<typeof Bun.listen<SockState>>[0]) as UnixSocketListener<SockState>;
  } catch (e) {
    throw new EdgeportError("E_DIAL", `cannot listen on ${description}: ${errnoOf(e) ?? (e as Error).message}`, {
      cause: e,
    });
  }
  return {
    address: description,
    close: () => {
      listener.stop(true);
    },
  };
}
