/**
 * One host TCP listener on exactly its address. Each accepted connection waits (paused) for
 * a ready pipe, then becomes a channel to the target.
 */
import type { Socket, TCPSocketListener, TCPSocketListenOptions } from "bun";
import { type ConsolaInstance, LogLevels } from "consola";
import { type RelayConn, relaySocketHandlers, socketEndpoint } from "../relay/endpoints/socket-endpoint.ts";
import type { RelayClient } from "../relay/host/relay-client.ts";
import type { Session } from "../relay/mux/session.ts";
import { formatHostPort, parseIp } from "../shared/address.ts";
import { EdgeportError, errnoOf } from "../shared/errors.ts";
import { formatMapping, type PortMapping } from "../shared/port-spec.ts";
import { proxyV2Header } from "../shared/proxy-protocol.ts";

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

const BIND_HINTS: Record<string, string> = {
  EADDRINUSE: "the address is already in use by another listener",
  EADDRNOTAVAIL: "the address is not assigned to any interface of this host",
  EACCES: "permission denied (ports below 1024 need privileges)",
  EPERM: "permission denied",
};

export function bindError(address: string, e: unknown): EdgeportError {
  const code = errnoOf(e) ?? "EIO";
  const errCode =
    code === "EADDRINUSE"
      ? "E_PORT_IN_USE"
      : code === "EADDRNOTAVAIL"
        ? "E_ADDR_NOT_AVAILABLE"
        : code === "EACCES" || code === "EPERM"
          ? "E_PERMISSION"
          : "E_DIAL";
  return new EdgeportError(errCode, `cannot listen on ${address}: ${BIND_HINTS[code] ?? code} (${code})`, { cause: e });
}

export function openTcpListener(
  m: PortMapping,
  relay: RelayClient,
  o: { log: ConsolaInstance; pipeWaitMs: number; quiet?: boolean },
): TcpListener {
  const log = o.log;
  const destOf = (x: PortMapping) => ({ proto: "tcp" as const, ip: parseIp(x.targetIp).bytes, port: x.targetPort });
  let dest = destOf(m);
  const address = formatHostPort(m.hostIp, m.hostPort);
  const sockets = new Set<Socket<Conn>>();
  const counters = { connectionsTotal: 0, bytesIn: 0, bytesOut: 0 };
  const countedEndpoint = (sock: Socket<Conn>) => {
    const ep = socketEndpoint(sock);
    const write = ep.write;
    ep.write = (d) => {
      const n = write(d);
      if (n > 0) counters.bytesOut += n;
      return n;
    };
    return ep;
  };

  function attach(sock: Socket<Conn>, s: Session, peer: string): void {
    // opted in: the container learns the client's address from a PROXY v2 header, ahead of the
    // client's first byte (it travels as channel data, so any forwarder carries it); built before
    // the channel opens, so a socket whose addresses cannot be read is reset, never sent headerless
    let header: Uint8Array | null = null;
    if (m.proxyProtocol) {
      try {
        header = proxyV2Header(
          { ip: sock.remoteAddress, port: sock.remotePort },
          { ip: sock.localAddress || m.hostIp, port: sock.localPort || listener.port },
        );
      } catch (e) {
        log.warn(`${address} <- ${peer}: reset: no PROXY header: ${(e as Error).message}`);
        sock.terminate();
        return;
      }
    }
    const ch = s.open(dest, countedEndpoint(sock));
    sock.data.ch = ch;
    if (header) ch.localData(header);
    ch.onEnded = (failure) => {
      if (failure) log.info(`${address} <- ${peer}: ${failure}`);
    };
    if (log.level >= LogLevels.debug)
      log.debug(`${address} <- ${peer}: channel ${ch.id} to ${formatHostPort(m.targetIp, m.targetPort)}`);
  }

  /** The connection becomes a channel at once when the pipe is up; else it waits, paused, for the pipe. */
  function connect(sock: Socket<Conn>): void {
    const peer = formatHostPort(sock.remoteAddress, sock.remotePort);
    const up = relay.current;
    if (up?.state === "ready") return attach(sock, up, peer);
    sock.pause();
    relay.session(o.pipeWaitMs).then(
      (s) => {
        if (sock.data.gone) return;
        attach(sock, s, peer);
        sock.resume();
      },
      (e: Error) => {
        if (sock.data.gone) return;
        log.warn(`${address} <- ${peer}: reset: ${e.message}`);
        sock.terminate();
      },
    );
  }

  let listener: TCPSocketListener<Conn>;
  try {
    const options = {
      hostname: m.hostIp,
      port: m.hostPort,
      allowHalfOpen: true,
      exclusive: true,
      // "::" means all IPv6 interfaces, never IPv4 too: the bind address is the boundary
      ...(m.hostIp.includes(":") ? { ipv6Only: true } : {}),
      socket: {
        ...relaySocketHandlers,
        data(sock, chunk) {
          counters.bytesIn += chunk.length;
          relaySocketHandlers.data!(sock, chunk);
        },
        open(sock) {
          counters.connectionsTotal++;
          sock.data = { ch: null, gone: false };
          sockets.add(sock);
          connect(sock);
        },
        close(sock, err) {
          sock.data.gone = true;
          sockets.delete(sock);
          relaySocketHandlers.close!(sock, err as Error);
        },
      },
    } as TCPSocketListenOptions<Conn>; // ipv6Only is missing from Bun's listen types
    listener = Bun.listen<Conn>(options);
  } catch (e) {
    throw bindError(address, e);
  }
  if (!o.quiet) log.info(`published ${formatMapping(m)}`);

  return {
    kind: "tcp",
    get mapping() {
      return m;
    },
    port: listener.port,
    retarget(next) {
      m = next;
      dest = destOf(next);
    },
    get connections() {
      return sockets.size;
    },
    stats: () => ({ ...counters }),
    async close(graceMs = 1000) {
      listener.stop(false);
      for (const s of sockets) {
        if (s.data.ch) s.data.ch.localEnd();
        else s.end();
      }
      const deadline = Date.now() + graceMs;
      while (sockets.size > 0 && Date.now() < deadline) await Bun.sleep(10);
      for (const s of sockets) s.terminate();
      listener.stop(true);
      if (!o.quiet) log.info(`unpublished ${formatMapping(m)}`);
    },
  };
}
