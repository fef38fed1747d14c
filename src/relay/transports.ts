/**
 * Pipe transports: unix and tcp sockets (listen or connect), a spawned process's stdio (exec:),
 * our own stdio (stdio:), and Windows named pipes (npipe:, through Bun's unix-path sockets).
 */
import { existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";
import { EdgeportError, errnoOf } from "../shared/errors.ts";
import { formatTransportUrl, type TransportUrl } from "./transport-url.ts";
import type { Pipe, PipeHandlers } from "./pipe.ts";
import { growSocketBuffers, PIPE_SOCKET_BUFFER, pipeBufferSetting } from "./sockbuf.ts";
import { log } from "../shared/log.ts";
import { poke } from "../shared/spin.ts";

/** Called once per connected pipe; returns the handlers that receive its events. */
export type OnPipe = (pipe: Pipe) => PipeHandlers;

export interface PipeListener {
  /** the address actually bound (tcp port 0 becomes the real port) */
  readonly address: string;
  close(): void;
}

interface SockState {
  h: PipeHandlers | null;
  closed: boolean;
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
    poke();
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

let pipeBufferBytes: number | null = null;
let toldBuffers = false;

/** EDGEPORT_PIPE_BUFFER, read once, when the first pipe connects (the log is configured by then). */
function pipeBuffer(): number {
  if (pipeBufferBytes === null) {
    try {
      pipeBufferBytes = pipeBufferSetting();
    } catch (e) {
      log.warn(`${(e as Error).message}; using ${PIPE_SOCKET_BUFFER}`);
      pipeBufferBytes = PIPE_SOCKET_BUFFER;
    }
  }
  return pipeBufferBytes;
}

/** A unix-socket pipe gets buffers larger than one frame (src/relay/sockbuf.ts says why). */
function tuneUnixPipe(sock: Socket<SockState>, description: string): void {
  const want = pipeBuffer();
  if (want <= 0 || process.platform === "win32") return;
  const got = growSocketBuffers((sock as unknown as { fd?: number }).fd, want);
  if (!got) {
    if (!toldBuffers) log.info(`pipe ${description}: the socket buffers could not be set (no libc reachable through bun:ffi); the kernel's defaults cost throughput`);
    toldBuffers = true;
    return;
  }
  log.debug(`pipe ${description}: socket buffers ${got.send} bytes send, ${got.receive} receive (as the kernel counts them)`);
  // Linux reports twice what it granted; a grant below the ask was capped by net.core.wmem_max
  if (got.send >= 0 && got.send < want && !toldBuffers) {
    toldBuffers = true;
    log.info(
      `pipe ${description}: the kernel capped the socket send buffer at ${got.send} bytes (asked ${want}); ` +
        `as root, or with net.core.wmem_max raised to ${want}, the pipe is faster (docs/performance.md)`,
    );
  }
}

function socketTarget(u: TransportUrl): { unix: string } | { hostname: string; port: number } {
  if (u.kind === "unix" || u.kind === "npipe") return { unix: u.path };
  if (u.kind === "tcp") return { hostname: u.host, port: u.port };
  throw new EdgeportError("E_BAD_URL", `${formatTransportUrl(u)} is not a socket transport`);
}

/** Connects one pipe (handed to onPipe). Resolves once connected; rejects with E_DIAL naming the cause. */
export async function dialPipe(u: TransportUrl, onPipe: OnPipe): Promise<void> {
  const description = formatTransportUrl(u);
  if (u.kind === "exec") return spawnPipe(u.command, u.args, description, onPipe);
  if (u.kind === "stdio") throw new EdgeportError("E_BAD_URL", "stdio: is a listen-side transport (the forwarder's)");
  const state: SockState = { h: null, closed: false };
  try {
    await Bun.connect<SockState>({
      ...socketTarget(u),
      data: state,
      socket: {
        ...pipeSocketHandlers,
        open(sock) {
          if (u.kind === "unix") tuneUnixPipe(sock, description);
          sock.data.h = onPipe(socketPipe(sock, description));
        },
      },
    } as Parameters<typeof Bun.connect<SockState>>[0]);
  } catch (e) {
    throw new EdgeportError("E_DIAL", `cannot connect to ${description}: ${errnoOf(e) ?? (e as Error).message}`, { cause: e });
  }
}

/** Prepares a unix socket path: a 0700 parent directory, no stale socket file. */
export function prepareUnixPath(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new EdgeportError("E_BAD_URL", `${path} exists and is not a socket; refusing to replace it`);
    unlinkSync(path);
  }
}

/** Listens for pipes; each accepted connection becomes a pipe. stdio: yields exactly one. */
export function listenPipes(u: TransportUrl, onPipe: OnPipe): PipeListener {
  const description = formatTransportUrl(u);
  if (u.kind === "stdio") return stdioPipe(onPipe);
  if (u.kind === "exec") throw new EdgeportError("E_BAD_URL", "exec: is a connect-side transport (the host's)");
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
          sock.data = { h: null, closed: false };
          const peer = u.kind === "tcp" ? `${description} from ${sock.remoteAddress}` : description;
          if (u.kind === "unix") tuneUnixPipe(sock, description);
          sock.data.h = onPipe(socketPipe(sock, peer));
        },
      },
    } as Parameters<typeof Bun.listen<SockState>>[0]);
  } catch (e) {
    throw new EdgeportError("E_DIAL", `cannot listen on ${description}: ${errnoOf(e) ?? (e as Error).message}`, { cause: e });
  } finally {
    if (oldMask !== null) process.umask(oldMask);
  }
  const address = u.kind === "tcp" ? formatTransportUrl({ ...u, port: (listener as unknown as TCPSocketListener<SockState>).port }) : description;
  return {
    address,
    close: () => {
      listener.stop(true);
      if (u.kind === "unix" && existsSync(u.path)) unlinkSync(u.path);
    },
  };
}

/** Adapts a FileSink (a child's stdin, our stdout) to the Pipe contract: one flush in flight at a time. */
function sinkWriter(sink: Bun.FileSink, onDrain: () => void): (d: Uint8Array) => number {
  let flushing = false;
  let closed = false;
  return (d) => {
    if (closed) return -1;
    if (flushing) return 0;
    try {
      sink.write(d);
      const r = sink.flush();
      if (r instanceof Promise) {
        flushing = true;
        r.then(
          () => {
            flushing = false;
            onDrain();
          },
          () => {
            closed = true;
          },
        );
      }
      return d.length;
    } catch {
      closed = true;
      return -1;
    }
  };
}

async function pumpStream(stream: ReadableStream<Uint8Array>, h: () => PipeHandlers | null): Promise<void> {
  for await (const chunk of stream) {
    poke();
    h()?.data(chunk);
  }
}

function spawnPipe(command: string, args: string[], description: string, onPipe: OnPipe): void {
  let proc: Bun.Subprocess<"pipe", "pipe", "inherit">;
  try {
    proc = Bun.spawn([command, ...args], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  } catch (e) {
    throw new EdgeportError("E_DIAL", `cannot start ${description}: ${(e as Error).message}`, { cause: e });
  }
  let handlers: PipeHandlers | null = null;
  let ended = false;
  const end = (why?: string) => {
    if (ended) return;
    ended = true;
    handlers?.closed(why);
  };
  const pipe: Pipe = {
    description: `${description} (pid ${proc.pid})`,
    write: sinkWriter(proc.stdin, () => handlers?.drain()),
    close: () => {
      try {
        proc.stdin.end();
      } catch {
        // already closed
      }
      proc.kill();
    },
  };
  handlers = onPipe(pipe);
  pumpStream(proc.stdout, () => handlers).then(
    () => end(`process exited${proc.exitCode !== null ? ` with code ${proc.exitCode}` : ""}`),
    (e) => end((e as Error).message),
  );
  proc.exited.then((code) => end(`process exited with code ${code}`));
}

function stdioPipe(onPipe: OnPipe): PipeListener {
  let handlers: PipeHandlers | null = null;
  const out = Bun.stdout.writer();
  const pipe: Pipe = {
    description: "stdio:",
    write: sinkWriter(out, () => handlers?.drain()),
    close: () => {
      out.end();
    },
  };
  handlers = onPipe(pipe);
  pumpStream(Bun.stdin.stream(), () => handlers).then(
    () => handlers?.closed("stdin closed"),
    (e) => handlers?.closed((e as Error).message),
  );
  return { address: "stdio:", close: () => pipe.close() };
}
