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

type Totals = {
  opened: number;
  expired: number;
  evicted: number;
  failed: number;
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
};

/** Adds a flow's counters into t (the port's totals, or a copy of them). */
function addCounters(t: Totals, f: Flow): void {
  const c = f.ep.counters;
  t.datagramsIn += c.sent;
  t.bytesIn += c.bytesSent;
  t.datagramsOut += c.received;
  t.bytesOut += c.bytesReceived;
  t.dropped += c.dropped;
}

type UdpListenerOptions = { log: ConsolaInstance; pipeWaitMs: number; quiet?: boolean } & Partial<UdpOptions>;

const destOf = (x: PortMapping): Destination => ({ proto: "udp", ip: parseIp(x.targetIp).bytes, port: x.targetPort });

class UdpPort implements UdpListener {
  readonly kind = "udp";
  readonly ready: Promise<void>;
  private dest: Destination;
  private readonly address: string;
  private readonly idleMs: number;
  private readonly maxFlows: number;
  private readonly flows: FlowTable<Flow>;
  private readonly totals: Totals = {
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
  private readonly failuresLogged = new Set<string>();
  private closed = false;
  private boundPort = 0;
  private readonly sock: dgram.Socket;
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(
    private m: PortMapping,
    private readonly relay: RelayClient,
    private readonly o: UdpListenerOptions,
  ) {
    this.idleMs = o.idleMs ?? DEFAULT_UDP_IDLE_MS;
    this.maxFlows = o.maxFlows ?? DEFAULT_UDP_MAX_FLOWS;
    this.dest = destOf(m);
    this.address = formatHostPort(m.hostIp, m.hostPort);
    this.flows = new FlowTable<Flow>({ idleMs: this.idleMs, maxFlows: this.maxFlows, now: () => performance.now() });
    const v6 = m.hostIp.includes(":");
    // "::" means all IPv6 interfaces, never IPv4 too: the bind address is the boundary
    this.sock = dgram.createSocket({ type: v6 ? "udp6" : "udp4", ipv6Only: v6, reuseAddr: false });
    this.sock.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
      poke();
      if (this.closed) return;
      const key = formatHostPort(rinfo.address, rinfo.port);
      const flow = this.flows.get(key) ?? this.newFlow(key, rinfo.port, rinfo.address);
      this.touch(flow);
      flow.ep.deliver(msg);
    });
    this.ready = this.bind();
    this.ready.catch(() => {});
    const sweepMs = Math.max(20, Math.min(1000, Math.floor(this.idleMs / 8)));
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref?.();
  }

  get mapping(): PortMapping {
    return this.m;
  }
  get port(): number {
    return this.boundPort;
  }
  get connections(): number {
    return this.flows.size;
  }

  private touch(f: Flow): void {
    if (this.flows.get(f.key) === f) this.flows.touch(f.key); // else ended meanwhile
  }

  private newFlow(key: string, clientPort: number, clientAddr: string): Flow {
    const { log } = this.o;
    const flow: Flow = { key, ep: null as unknown as DatagramEndpoint };
    flow.ep = new DatagramEndpoint(
      (payload) => {
        if (this.closed) return;
        this.touch(flow);
        this.sock.send(payload, clientPort, clientAddr);
      },
      (reason) => this.ended(flow, reason),
    );
    const evicted = this.flows.add(key, flow);
    if (evicted) {
      this.totals.evicted++;
      log.debug(
        `${this.address}: flow cap ${this.maxFlows} reached, evicting the least recently used flow ${evicted.key}`,
      );
      evicted.flow.ep.end();
    }
    this.totals.opened++;
    this.relay.session(this.o.pipeWaitMs).then(
      (s) => {
        if (flow.ep.isEnded) return;
        const ch = s.open(this.dest, flow.ep);
        flow.ep.attach(ch);
        log.debug(
          `${this.address}/udp <- ${key}: channel ${ch.id} to ${formatHostPort(this.m.targetIp, this.m.targetPort)}`,
        );
      },
      (e: Error) => flow.ep.fail(`dropped: ${e.message}`),
    );
    return flow;
  }

  private ended(flow: Flow, reason: string | undefined | null): void {
    this.flows.delete(flow.key, flow);
    addCounters(this.totals, flow);
    if (!reason) return;
    this.totals.failed++;
    if (!this.failuresLogged.has(reason)) {
      this.failuresLogged.add(reason);
      this.o.log.warn(`${this.address}/udp <- ${flow.key}: ${reason}`);
    }
  }

  private bind(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let bound = false;
      this.sock.on("error", (e: Error) => {
        if (!bound) {
          bound = true;
          this.closed = true;
          try {
            this.sock.close();
          } catch {}
          reject(bindError(this.address, e));
          return;
        }
        // ICMP errors from clients that went away (ECONNREFUSED...) are not ours to report
        this.o.log.debug(`${this.address}/udp: ${(e as Error).message}`);
      });
      this.sock.bind({ address: this.m.hostIp, port: this.m.hostPort, exclusive: true }, () => {
        bound = true;
        this.boundPort = this.sock.address().port;
        try {
          this.sock.setRecvBufferSize(RECV_BUFFER);
          this.sock.setSendBufferSize(RECV_BUFFER);
        } catch {
          // capped by the system (net.core.rmem_max): the default still works
        }
        if (!this.o.quiet) this.o.log.info(`published ${formatMapping(this.m)}`);
        resolve();
      });
    });
  }

  private sweep(): void {
    for (const x of this.flows.expire()) {
      this.totals.expired++;
      this.o.log.debug(`${this.address}/udp: flow ${x.key} idle for ${Math.round(x.idleMs)} ms, closed`);
      x.flow.ep.end();
    }
  }

  stats(): UdpStats {
    const s = { ...this.totals };
    for (const f of this.flows.values()) addCounters(s, f);
    return {
      flows: this.flows.size,
      flowsOpened: s.opened,
      flowsExpired: s.expired,
      flowsEvicted: s.evicted,
      flowsFailed: s.failed,
      datagramsIn: s.datagramsIn,
      datagramsOut: s.datagramsOut,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      dropped: s.dropped,
      idleTimeoutMs: this.idleMs,
      maxFlows: this.maxFlows,
    };
  }

  retarget(next: PortMapping): void {
    this.m = next;
    this.dest = destOf(next);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.sweeper);
    for (const { flow } of this.flows.clear()) flow.ep.end();
    this.closed = true;
    await this.ready.then(
      () =>
        new Promise<void>((resolve) => {
          try {
            this.sock.close(() => resolve());
          } catch {
            resolve();
          }
        }),
      () => {},
    );
    if (!this.o.quiet) this.o.log.info(`unpublished ${formatMapping(this.m)}`);
  }
}

export function openUdpListener(m: PortMapping, relay: RelayClient, o: UdpListenerOptions): UdpListener {
  return new UdpPort(m, relay, o);
}
