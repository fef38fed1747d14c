/**
 * The host end of a socket forward: a unix socket (or, on Windows, a named pipe) whose every
 * connection becomes a channel to a unix socket in the VM, dialled by the forwarder (which must
 * allow the path: --allow unix:///PATH). Connections are relayed exactly as TCP ones are (the same
 * socket endpoint: half-close, back-pressure). Making the socket takes a probe of a stale file,
 * so it completes asynchronously: `ready` settles when it listens, or with why it cannot.
 */
import type { Socket, UnixSocketListener } from "bun";
import { type ConsolaInstance, LogLevels } from "consola";
import { type RelayConn, relaySocketHandlers, socketEndpoint } from "../relay/endpoints/socket-endpoint.ts";
import type { RelayClient } from "../relay/host/relay-client.ts";
import type { Session } from "../relay/mux/session.ts";
import { EdgeportError } from "../shared/errors.ts";
import { formatMapping, type PortMapping } from "../shared/port-spec.ts";
import { socketUrl } from "../shared/socket-spec.ts";
import { checkSocketDir, clearStaleSocket, listenOwnerOnly, removeOwnSocket } from "./unix-path.ts";

interface Conn extends RelayConn {
  gone: boolean;
  n: number;
}

export interface UnixListener {
  readonly kind: "unix";
  readonly mapping: PortMapping;
  /** always 0: a socket has a path, not a port */
  readonly port: 0;
  readonly connections: number;
  /** resolves when the socket listens; rejects with why it cannot (nothing is left behind) */
  readonly ready: Promise<void>;
  stats(): { connectionsTotal: number; bytesIn: number; bytesOut: number };
  retarget(m: PortMapping): void;
  /** stops accepting, half-closes connections, resets the rest after graceMs, removes the socket file */
  close(graceMs?: number): Promise<void>;
}

export interface UnixListenerOptions {
  log: ConsolaInstance;
  pipeWaitMs: number;
  quiet?: boolean;
  /** the uid the host socket's directory must belong to (default: the process's) */
  uid?: number;
}

interface Ctx {
  m: PortMapping;
  readonly where: string;
  readonly relay: RelayClient;
  readonly o: UnixListenerOptions;
  readonly sockets: Set<Socket<Conn>>;
  readonly counters: { connectionsTotal: number; bytesIn: number; bytesOut: number };
}

function attach(c: Ctx, sock: Socket<Conn>, s: Session): void {
  const ep = socketEndpoint(sock);
  const write = ep.write;
  ep.write = (d) => {
    const n = write(d);
    if (n > 0) c.counters.bytesOut += n;
    return n;
  };
  const ch = s.open({ proto: "unix", path: c.m.targetIp }, ep);
  sock.data.ch = ch;
  const who = `${c.where} <- client ${sock.data.n}`;
  ch.onEnded = (failure) => {
    if (failure) c.o.log.info(`${who}: ${failure}`);
  };
  if (c.o.log.level >= LogLevels.debug) c.o.log.debug(`${who}: channel ${ch.id} to ${socketUrl(c.m.targetIp)}`);
}

/** The connection becomes a channel at once when the pipe is up; else it waits, paused, for the pipe. */
function connect(c: Ctx, sock: Socket<Conn>): void {
  const up = c.relay.current;
  if (up?.state === "ready") return attach(c, sock, up);
  sock.pause();
  c.relay.session(c.o.pipeWaitMs).then(
    (s) => {
      if (sock.data.gone) return;
      attach(c, sock, s);
      sock.resume();
    },
    (e: Error) => {
      if (sock.data.gone) return;
      c.o.log.warn(`${c.where} <- client ${sock.data.n}: reset: ${e.message}`);
      sock.terminate();
    },
  );
}

function handlers(c: Ctx) {
  return {
    ...relaySocketHandlers,
    data(sock: Socket<Conn>, chunk: Buffer) {
      c.counters.bytesIn += chunk.length;
      relaySocketHandlers.data!(sock, chunk);
    },
    open(sock: Socket<Conn>) {
      c.counters.connectionsTotal++;
      sock.data = { ch: null, gone: false, n: c.counters.connectionsTotal };
      c.sockets.add(sock);
      connect(c, sock);
    },
    close(sock: Socket<Conn>, err?: Error) {
      sock.data.gone = true;
      c.sockets.delete(sock);
      relaySocketHandlers.close!(sock, err as Error);
    },
  };
}

const isPipe = (path: string) => path.startsWith("\\\\");

/** Checks the directory, clears a stale file, listens owner-only. */
async function bind(c: Ctx): Promise<{ listener: UnixSocketListener<Conn>; ino: number | null }> {
  const path = c.m.hostIp;
  if (isPipe(path)) {
    if (process.platform !== "win32")
      throw new EdgeportError("E_UNSUPPORTED", `${socketUrl(path)}: named pipes exist on Windows only`);
    return { listener: Bun.listen<Conn>({ unix: path, allowHalfOpen: true, socket: handlers(c) }), ino: null };
  }
  checkSocketDir(path, c.o.uid ?? process.getuid?.() ?? 0);
  await clearStaleSocket(path);
  return listenOwnerOnly<Conn>(path, handlers(c));
}

export function openUnixListener(m: PortMapping, relay: RelayClient, o: UnixListenerOptions): UnixListener {
  const c: Ctx = {
    m,
    where: socketUrl(m.hostIp),
    relay,
    o,
    sockets: new Set(),
    counters: { connectionsTotal: 0, bytesIn: 0, bytesOut: 0 },
  };
  let bound: { listener: UnixSocketListener<Conn>; ino: number | null } | null = null;
  let closed = false;
  const ready = bind(c).then((b) => {
    bound = b;
    if (closed) throw new EdgeportError("E_DIAL", `${c.where}: closed before it listened`);
    if (!o.quiet) o.log.info(`published ${formatMapping(m)}`);
  });
  ready.catch(() => {});

  return {
    kind: "unix",
    get mapping() {
      return c.m;
    },
    port: 0,
    ready,
    retarget(next) {
      c.m = next;
    },
    get connections() {
      return c.sockets.size;
    },
    stats: () => ({ ...c.counters }),
    async close(graceMs = 1000) {
      closed = true;
      await ready.catch(() => {});
      const b = bound as { listener: UnixSocketListener<Conn>; ino: number | null } | null;
      if (!b) return;
      b.listener.stop(false);
      // the path is free for the next owner at once; open connections finish on their own sockets
      removeOwnSocket(c.m.hostIp, b.ino);
      for (const s of c.sockets) {
        if (s.data.ch) s.data.ch.localEnd();
        else s.end();
      }
      const deadline = Date.now() + graceMs;
      while (c.sockets.size > 0 && Date.now() < deadline) await Bun.sleep(10);
      for (const s of c.sockets) s.terminate();
      b.listener.stop(true);
      if (!o.quiet) o.log.info(`unpublished ${formatMapping(c.m)}`);
    },
  };
}
