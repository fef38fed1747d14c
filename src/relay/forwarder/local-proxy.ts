/**
 * A plain one-hop proxy inside the VM, as dockerd's own docker-proxy is. `edgeport docker-proxy`
 * runs one beside publishing on the host, for the connections that never reach the host: a
 * process in the VM dialling the published port on the VM's loopback, or a container hairpinning
 * to it. dockerd either passes the listening socket (fd 4, `-use-listen-fd`, newer dockerd) or
 * expects the proxy to bind the address itself (older dockerd); both are served.
 *
 * TCP: each accepted connection is spliced to the container: half-close and resets are carried,
 * and a side that cannot take more pauses the other (stream pipes). UDP: one socket per client
 * towards the container, so replies go back to the client that asked; a client idle for
 * `udpIdleMs` is forgotten, and past `udpMaxFlows` the least recently active one is. Replies leave
 * from the published socket with the source address the kernel picks: on a socket bound to a
 * wildcard address that is the address routed towards the client, which is not always the one the
 * client sent to (dockerd's own proxy sets IP_PKTINFO to answer from that one; see
 * docs/operations.md).
 */
import dgram from "node:dgram";
import net from "node:net";
import { formatHostPort } from "../../shared/address.ts";
import { FlowTable } from "../endpoints/flow-table.ts";

export interface LocalProxyOptions {
  proto: "tcp" | "udp";
  /** the published address in the VM */
  host: string;
  port: number;
  /** a socket dockerd already bound (and for TCP, listened on) for host:port */
  fd?: number;
  targetHost: string;
  targetPort: number;
  udpIdleMs?: number;
  udpMaxFlows?: number;
  log?: { warn(m: string): void; debug(m: string): void };
}

export interface LocalProxy {
  /** what it serves, e.g. "0.0.0.0:8080/tcp" */
  readonly address: string;
  /** connections (TCP) or client flows (UDP) open now */
  readonly open: number;
  /** stops accepting and ends what is open */
  close(): Promise<void>;
}

const DEFAULT_UDP_IDLE_MS = 90_000; // docker-proxy's own UDP connection timeout
const DEFAULT_UDP_MAX_FLOWS = 4096; // each flow holds a descriptor
const isV6 = (ip: string) => ip.includes(":");

/** Starts serving; rejects with an error that names the address when it cannot. */
export function startLocalProxy(o: LocalProxyOptions): Promise<LocalProxy> {
  return o.proto === "tcp" ? startTcp(o) : startUdp(o);
}

type ResettableSocket = net.Socket & { resetAndDestroy?: () => void };
const reset = (s: ResettableSocket) => {
  if (s.destroyed) return;
  if (s.resetAndDestroy) s.resetAndDestroy();
  else s.destroy();
};

function splice(client: net.Socket, o: LocalProxyOptions, open: Set<net.Socket>): void {
  const up = net.connect({ host: o.targetHost, port: o.targetPort, allowHalfOpen: true });
  open.add(client);
  open.add(up);
  // a reset (or a failed dial) on one side is a reset on the other, as a direct connection would see it
  client.on("error", () => reset(up));
  up.on("error", (e: NodeJS.ErrnoException) => {
    o.log?.debug(`${formatHostPort(o.targetHost, o.targetPort)}: ${e.code ?? e.message}`);
    reset(client);
  });
  client.on("close", () => open.delete(client));
  up.on("close", () => open.delete(up));
  up.on("connect", () => {
    // pipe() carries the end of one side as a half-close of the other and pauses a side whose
    // destination is full
    client.pipe(up);
    up.pipe(client);
    client.resume();
  });
}

function startTcp(o: LocalProxyOptions): Promise<LocalProxy> {
  const address = `${formatHostPort(o.host, o.port)}/tcp`;
  const open = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) => splice(c, o, open));
  return new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${address} in the VM: ${e.code ?? e.message}`)),
    );
    const ready = () => {
      server.removeAllListeners("error");
      server.on("error", (e) => o.log?.warn(`${address}: ${e.message}`));
      resolve({
        address,
        get open() {
          return open.size;
        },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const s of open) reset(s);
          }),
      });
    };
    if (o.fd !== undefined) server.listen({ fd: o.fd }, ready);
    else server.listen({ host: o.host, port: o.port, ipv6Only: isV6(o.host), exclusive: true }, ready);
  });
}

interface Flow {
  up: dgram.Socket;
  /** datagrams that came before the socket towards the container was connected */
  waiting: Buffer[] | null;
}

function startUdp(o: LocalProxyOptions): Promise<LocalProxy> {
  const address = `${formatHostPort(o.host, o.port)}/udp`;
  const idleMs = o.udpIdleMs ?? DEFAULT_UDP_IDLE_MS;
  const maxFlows = o.udpMaxFlows ?? DEFAULT_UDP_MAX_FLOWS;
  const sock = dgram.createSocket({ type: isV6(o.host) ? "udp6" : "udp4", ipv6Only: isV6(o.host), reuseAddr: false });
  const flows = new FlowTable<Flow>({ idleMs, maxFlows, now: () => performance.now() });
  const sweep = setInterval(
    () => {
      for (const expired of flows.expire()) expired.flow.up.close();
    },
    Math.min(idleMs, 5000),
  );
  sweep.unref?.();
  sock.on("message", (msg, rinfo) => {
    const key = formatHostPort(rinfo.address, rinfo.port);
    let entry = flows.get(key);
    if (!entry) {
      // connected to the container: the kernel passes only its replies
      const up = dgram.createSocket(isV6(o.targetHost) ? "udp6" : "udp4");
      const flow: Flow = { up, waiting: [] };
      up.on("message", (reply) => {
        if (flows.get(key) === flow) flows.touch(key);
        sock.send(reply, rinfo.port, rinfo.address);
      });
      up.on("error", (e) => {
        o.log?.debug(`${address} <- ${key}: ${e.message}`);
        if (flows.delete(key, flow)) up.close();
      });
      up.connect(o.targetPort, o.targetHost, () => {
        for (const m of flow.waiting!) up.send(m);
        flow.waiting = null;
      });
      // past the cap the least recently active flow goes
      flows.add(key, (entry = flow))?.flow.up.close();
    }
    flows.touch(key);
    if (!entry.waiting) entry.up.send(msg);
    else if (entry.waiting.length < 64) entry.waiting.push(msg); // a datagram path may drop; memory stays bounded
  });
  return new Promise((resolve, reject) => {
    sock.once("error", (e: NodeJS.ErrnoException) => {
      clearInterval(sweep);
      reject(new Error(`cannot listen on ${address} in the VM: ${e.code ?? e.message}`));
    });
    // the socket dockerd bound (fd 4) is adopted as it is: dockerd still holds its own copy until the
    // proxy has reported, so the address could not be bound again
    const bound = () => {
      sock.removeAllListeners("error");
      sock.on("error", (e) => o.log?.warn(`${address}: ${e.message}`));
      resolve({
        address,
        get open() {
          return flows.size;
        },
        close: async () => {
          clearInterval(sweep);
          for (const { flow } of flows.clear()) flow.up.close();
          sock.close();
        },
      });
    };
    if (o.fd !== undefined) sock.bind({ fd: o.fd } as dgram.BindOptions, bound);
    else sock.bind({ address: o.host, port: o.port, exclusive: true }, bound);
  });
}
