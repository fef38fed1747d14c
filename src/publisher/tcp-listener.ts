/**
 * One host TCP listener on exactly its address. Each accepted connection waits (paused) for
 * a ready pipe, then becomes a channel to the target. Near the file descriptor limit the guard
 * pauses it (it stops listening) and resumes it (it listens again on the same port).
 */
import type { Socket, TCPSocketListener, TCPSocketListenOptions } from "bun";
import { type ConsolaInstance, LogLevels } from "consola";
import { type RelayConn, relaySocketHandlers, socketEndpoint } from "../relay/endpoints/socket-endpoint.ts";
import type { RelayClient } from "../relay/host/relay-client.ts";
import type { Destination } from "../relay/mux/codec.ts";
import type { Session } from "../relay/mux/session.ts";
import { formatHostPort, parseIp } from "../shared/address.ts";
import { formatMapping, type PortMapping } from "../shared/port-spec.ts";
import { proxyV2Header } from "../shared/proxy-protocol.ts";
import { bindError } from "./bind-error.ts";
import type { FdGuard } from "./fd-guard.ts";

export { bindError } from "./bind-error.ts";

interface Conn extends RelayConn {
  gone: boolean;
}

export interface TcpListener {
  readonly kind: "tcp";
  readonly mapping: PortMapping;
  /** the bound port (the real one when the mapping asked for port 0) */
  readonly port: number;
  readonly connections: number;
  /** traffic so far: connections accepted, bytes client -> target (in) and back (out) */
  stats(): { connectionsTotal: number; bytesIn: number; bytesOut: number };
  /** new connections go to this target from now on (same host address: no rebind) */
  retarget(m: PortMapping): void;
  /** stops accepting; open connections are ended (FIN), then reset after graceMs */
  close(graceMs?: number): Promise<void>;
}

export interface TcpListenerOptions {
  log: ConsolaInstance;
  pipeWaitMs: number;
  quiet?: boolean;
  /** pauses accepting near the file descriptor limit */
  guard?: FdGuard;
}

/** What one listener's connections share. */
interface Ctx {
  m: PortMapping;
  dest: Destination;
  readonly address: string;
  readonly relay: RelayClient;
  readonly o: TcpListenerOptions;
  readonly sockets: Set<Socket<Conn>>;
  readonly counters: { connectionsTotal: number; bytesIn: number; bytesOut: number };
  port: number;
}

const destOf = (x: PortMapping): Destination => ({ proto: "tcp", ip: parseIp(x.targetIp).bytes, port: x.targetPort });
const fdOf = (sock: Socket<Conn>) => (sock as unknown as { fd?: number }).fd;

function countedEndpoint(c: Ctx, sock: Socket<Conn>) {
  const ep = socketEndpoint(sock);
  const write = ep.write;
  ep.write = (d) => {
    const n = write(d);
    if (n > 0) c.counters.bytesOut += n;
    return n;
  };
  return ep;
}

function attach(c: Ctx, sock: Socket<Conn>, s: Session, peer: string): void {
  const { m, log } = { m: c.m, log: c.o.log };
  // opted in: the container learns the client's address from a PROXY v2 header, ahead of the
  // client's first byte (it travels as channel data, so any forwarder carries it); built before
  // the channel opens, so a socket whose addresses cannot be read is reset, never sent headerless
  let header: Uint8Array | null = null;
  if (m.proxyProtocol) {
    try {
      header = proxyV2Header(
        { ip: sock.remoteAddress, port: sock.remotePort },
        { ip: sock.localAddress || m.hostIp, port: sock.localPort || c.port },
      );
    } catch (e) {
      log.warn(`${c.address} <- ${peer}: reset: no PROXY header: ${(e as Error).message}`);
      sock.terminate();
      return;
    }
  }
  const ch = s.open(c.dest, countedEndpoint(c, sock));
  sock.data.ch = ch;
  if (header) ch.localData(header);
  ch.onEnded = (failure) => {
    if (failure) log.info(`${c.address} <- ${peer}: ${failure}`);
  };
  if (log.level >= LogLevels.debug)
    log.debug(`${c.address} <- ${peer}: channel ${ch.id} to ${formatHostPort(m.targetIp, m.targetPort)}`);
}

/** The connection becomes a channel at once when the pipe is up; else it waits, paused, for the pipe. */
function connect(c: Ctx, sock: Socket<Conn>): void {
  const peer = formatHostPort(sock.remoteAddress, sock.remotePort);
  const up = c.relay.current;
  if (up?.state === "ready") return attach(c, sock, up, peer);
  sock.pause();
  c.relay.session(c.o.pipeWaitMs).then(
    (s) => {
      if (sock.data.gone) return;
      attach(c, sock, s, peer);
      sock.resume();
    },
    (e: Error) => {
      if (sock.data.gone) return;
      c.o.log.warn(`${c.address} <- ${peer}: reset: ${e.message}`);
      sock.terminate();
    },
  );
}

function listenOptions(c: Ctx, port: number): TCPSocketListenOptions<Conn> {
  return {
    hostname: c.m.hostIp,
    port,
    allowHalfOpen: true,
    exclusive: true,
    // "::" means all IPv6 interfaces, never IPv4 too: the bind address is the boundary
    ...(c.m.hostIp.includes(":") ? { ipv6Only: true } : {}),
    socket: {
      ...relaySocketHandlers,
      data(sock, chunk) {
        c.counters.bytesIn += chunk.length;
        relaySocketHandlers.data!(sock, chunk);
      },
      open(sock) {
        c.counters.connectionsTotal++;
        sock.data = { ch: null, gone: false };
        c.sockets.add(sock);
        c.o.guard?.accepted(fdOf(sock));
        connect(c, sock);
      },
      close(sock, err) {
        sock.data.gone = true;
        c.sockets.delete(sock);
        relaySocketHandlers.close!(sock, err as Error);
      },
    },
  } as TCPSocketListenOptions<Conn>; // ipv6Only is missing from Bun's listen types
}

type Holder = { listener: TCPSocketListener<Conn> | null };

/** Registers with the fd guard: near the limit the listener stops listening, and listens again after. */
function guardListener(c: Ctx, h: Holder): (() => void) | undefined {
  let failedResume = false;
  return c.o.guard?.register({
    pause() {
      h.listener?.stop(false);
      h.listener = null;
    },
    resume() {
      try {
        h.listener = Bun.listen<Conn>(listenOptions(c, c.port));
        failedResume = false;
        return true;
      } catch (e) {
        if (!failedResume) c.o.log.warn(`${bindError(c.address, e).message}; trying again`);
        failedResume = true;
        return false;
      }
    },
  });
}

/** Stops accepting, half-closes every connection, waits up to graceMs for them, then resets the rest. */
async function closeAll(c: Ctx, h: Holder, graceMs: number): Promise<void> {
  h.listener?.stop(false);
  for (const s of c.sockets) {
    if (s.data.ch) s.data.ch.localEnd();
    else s.end();
  }
  const deadline = Date.now() + graceMs;
  while (c.sockets.size > 0 && Date.now() < deadline) await Bun.sleep(10);
  for (const s of c.sockets) s.terminate();
  h.listener?.stop(true);
  h.listener = null;
}

export function openTcpListener(m: PortMapping, relay: RelayClient, o: TcpListenerOptions): TcpListener {
  const address = formatHostPort(m.hostIp, m.hostPort);
  const c: Ctx = {
    m,
    dest: destOf(m),
    address,
    relay,
    o,
    sockets: new Set(),
    counters: { connectionsTotal: 0, bytesIn: 0, bytesOut: 0 },
    port: 0,
  };
  const h: Holder = { listener: null };
  try {
    h.listener = Bun.listen<Conn>(listenOptions(c, m.hostPort));
  } catch (e) {
    throw bindError(address, e);
  }
  c.port = h.listener.port;
  const unguard = guardListener(c, h);
  if (!o.quiet) o.log.info(`published ${formatMapping(m)}`);

  return {
    kind: "tcp",
    get mapping() {
      return c.m;
    },
    port: c.port,
    retarget(next) {
      c.m = next;
      c.dest = destOf(next);
    },
    get connections() {
      return c.sockets.size;
    },
    stats: () => ({ ...c.counters }),
    async close(graceMs = 1000) {
      unguard?.();
      await closeAll(c, h, graceMs);
      if (!o.quiet) o.log.info(`unpublished ${formatMapping(c.m)}`);
    },
  };
}
