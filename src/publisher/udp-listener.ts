/**
 * One host UDP socket on exactly its address. Each client (source address and port) is a flow
 * with its own channel on the pipe, so replies go back to the client that asked, from the
 * published address and port. Flows end after `idleMs` without a datagram either way, and past
 * `maxFlows` the least recently used flow is evicted; either way the next datagram simply opens
 * a new flow.
 */
import dgram from "node:dgram";
import type { ConsolaInstance } from "consola";
import { DatagramEndpoint } from "../relay/endpoints/datagram-endpoint.ts";
import { FlowTable } from "../relay/endpoints/flow-table.ts";
import type { RelayClient } from "../relay/host/relay-client.ts";
import type { Destination } from "../relay/mux/codec.ts";
import { formatHostPort, parseIp } from "../shared/address.ts";
import { formatMapping, type PortMapping } from "../shared/port-spec.ts";
import { poke } from "../shared/spin.ts";
import { bindError } from "./tcp-listener.ts";

export const DEFAULT_UDP_IDLE_MS = 120_000;
export const DEFAULT_UDP_MAX_FLOWS = 4096;
/** Kernel receive buffer asked for each published UDP socket (bursts of big datagrams). */
const RECV_BUFFER = 4 * 1024 * 1024;

export interface UdpOptions {
  idleMs: number;
  maxFlows: number;
}

export interface UdpStats {
  flows: number;
  flowsOpened: number;
  flowsExpired: number;
  flowsEvicted: number;
  flowsFailed: number;
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
  idleTimeoutMs: number;
  maxFlows: number;
}

export interface UdpListener {
  readonly kind: "udp";
  readonly mapping: PortMapping;
  /** resolves once the socket is bound; rejects with the bind error */
  readonly ready: Promise<void>;
  /** the bound port (the real one when the mapping asked for port 0), 0 before ready */
  readonly port: number;
  /** open flows */
  readonly connections: number;
  stats(): UdpStats;
  /** new flows go to this target from now on (open flows keep theirs until they end) */
  retarget(m: PortMapping): void;
  /** ends every flow and closes the socket */
  close(graceMs?: number): Promise<void>;
}

interface Flow {
  key: string;
  ep: DatagramEndpoint;
}

export function openUdpListener(
  m: PortMapping,
  relay: RelayClient,
  o: { log: ConsolaInstance; pipeWaitMs: number; quiet?: boolean } & Partial<UdpOptions>,
): UdpListener {
  const log = o.log;
  const idleMs = o.idleMs ?? DEFAULT_UDP_IDLE_MS;
  const maxFlows = o.maxFlows ?? DEFAULT_UDP_MAX_FLOWS;
  const destOf = (x: PortMapping): Destination => ({ proto: "udp", ip: parseIp(x.targetIp).bytes, port: x.targetPort });
  let dest = destOf(m);
  const address = formatHostPort(m.hostIp, m.hostPort);
  const flows = new FlowTable<Flow>({ idleMs, maxFlows, now: () => performance.now() });
  const totals = {
    opened: 0,
    expired: 0,
    evicted: 0,
    failed: 0,
    datagramsIn: 0,
    datagramsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    dropped: 0,
  };
  const failuresLogged = new Set<string>();
  let closed = false;
  let boundPort = 0;

  const v6 = m.hostIp.includes(":");
  // "::" means all IPv6 interfaces, never IPv4 too: the bind address is the boundary
  const sock = dgram.createSocket({ type: v6 ? "udp6" : "udp4", ipv6Only: v6, reuseAddr: false });

  const touch = (f: Flow) => {
    if (flows.get(f.key) === f) flows.touch(f.key); // else ended meanwhile
  };

  /** Adds a flow's counters into t (the port's totals, or a copy of them). */
  function addCounters(t: typeof totals, f: Flow): void {
    const c = f.ep.counters;
    t.datagramsIn += c.sent;
    t.bytesIn += c.bytesSent;
    t.datagramsOut += c.received;
    t.bytesOut += c.bytesReceived;
    t.dropped += c.dropped;
  }

  function newFlow(key: string, clientPort: number, clientAddr: string): Flow {
    const flow: Flow = { key, ep: null as unknown as DatagramEndpoint };
    flow.ep = new DatagramEndpoint(
      (payload) => {
        if (closed) return;
        touch(flow);
        sock.send(payload, clientPort, clientAddr);
      },
      (reason) => {
        flows.delete(key, flow);
        addCounters(totals, flow);
        if (reason) {
          totals.failed++;
          if (!failuresLogged.has(reason)) {
            failuresLogged.add(reason);
            log.warn(`${address}/udp <- ${key}: ${reason}`);
          }
        }
      },
    );
    const evicted = flows.add(key, flow);
    if (evicted) {
      totals.evicted++;
      log.debug(`${address}: flow cap ${maxFlows} reached, evicting the least recently used flow ${evicted.key}`);
      evicted.flow.ep.end();
    }
    totals.opened++;
    relay.session(o.pipeWaitMs).then(
      (s) => {
        if (flow.ep.isEnded) return;
        const ch = s.open(dest, flow.ep);
        flow.ep.attach(ch);
        log.debug(`${address}/udp <- ${key}: channel ${ch.id} to ${formatHostPort(m.targetIp, m.targetPort)}`);
      },
      (e: Error) => flow.ep.fail(`dropped: ${e.message}`),
    );
    return flow;
  }

  sock.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
    poke();
    if (closed) return;
    const key = formatHostPort(rinfo.address, rinfo.port);
    const flow = flows.get(key) ?? newFlow(key, rinfo.port, rinfo.address);
    touch(flow);
    flow.ep.deliver(msg);
  });

  const ready = new Promise<void>((resolve, reject) => {
    let bound = false;
    sock.on("error", (e: Error) => {
      if (!bound) {
        bound = true;
        closed = true;
        try {
          sock.close();
        } catch {}
        reject(bindError(address, e));
        return;
      }
      // ICMP errors from clients that went away (ECONNREFUSED...) are not ours to report
      log.debug(`${address}/udp: ${(e as Error).message}`);
    });
    sock.bind({ address: m.hostIp, port: m.hostPort, exclusive: true }, () => {
      bound = true;
      boundPort = sock.address().port;
      try {
        sock.setRecvBufferSize(RECV_BUFFER);
        sock.setSendBufferSize(RECV_BUFFER);
      } catch {
        // capped by the system (net.core.rmem_max): the default still works
      }
      if (!o.quiet) log.info(`published ${formatMapping(m)}`);
      resolve();
    });
  });
  ready.catch(() => {});

  const sweepMs = Math.max(20, Math.min(1000, Math.floor(idleMs / 8)));
  const sweeper = setInterval(() => {
    for (const x of flows.expire()) {
      totals.expired++;
      log.debug(`${address}/udp: flow ${x.key} idle for ${Math.round(x.idleMs)} ms, closed`);
      x.flow.ep.end();
    }
  }, sweepMs);
  sweeper.unref?.();

  return {
    kind: "udp",
    get mapping() {
      return m;
    },
    ready,
    get port() {
      return boundPort;
    },
    get connections() {
      return flows.size;
    },
    stats() {
      const s = { ...totals };
      for (const f of flows.values()) addCounters(s, f);
      return {
        flows: flows.size,
        flowsOpened: s.opened,
        flowsExpired: s.expired,
        flowsEvicted: s.evicted,
        flowsFailed: s.failed,
        datagramsIn: s.datagramsIn,
        datagramsOut: s.datagramsOut,
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        dropped: s.dropped,
        idleTimeoutMs: idleMs,
        maxFlows,
      };
    },
    retarget(next) {
      m = next;
      dest = destOf(next);
    },
    async close() {
      if (closed) return;
      clearInterval(sweeper);
      for (const { flow } of flows.clear()) flow.ep.end();
      closed = true;
      await ready.then(
        () =>
          new Promise<void>((resolve) => {
            try {
              sock.close(() => resolve());
            } catch {
              resolve();
            }
          }),
        () => {},
      );
      if (!o.quiet) log.info(`unpublished ${formatMapping(m)}`);
    },
  };
}
