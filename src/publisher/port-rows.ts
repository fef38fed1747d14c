/**
 * The daemon's state as rows: one per port (published, failed or in conflict) with where it came
 * from and its traffic, the shape the control API and `edgeport ls` show. Pure.
 */
import type { BindingPolicy, WantedPort } from "../events/wanted.ts";
import type { EdgeportError } from "../shared/errors.ts";
import { socketUrl } from "../shared/socket-spec.ts";
import type { TcpListener } from "./tcp-listener.ts";
import type { UdpListener, UdpOptions, UdpStats } from "./udp-listener.ts";
import type { UnixListener } from "./unix-listener.ts";
import type { VmListenerState } from "./vm-source.ts";

export type Listener = TcpListener | UdpListener | UnixListener;

export interface PortState {
  key: string;
  host: string;
  target: string;
  container: string;
  status: "published" | "failed" | "conflict";
  error?: string;
  code?: string;
  /** where it came from: a container, an ad-hoc publish, or dockerd's userland proxy */
  source: {
    kind: "container" | "ad-hoc" | "docker-proxy" | "vm";
    containerId?: string;
    containerName?: string;
    /** vm: the process that listens in the VM, when the forwarder could tell */
    process?: string;
    /** an ad-hoc port kept in the daemon's state file across restarts (absent: no state file) */
    persisted?: boolean;
  };
  /** the id to unpublish it with (ad-hoc and docker-proxy), or `c-<container id>` */
  id: string;
  /** unix: a socket forward; host and target are then `unix:///PATH` (or `npipe:////./pipe/NAME`) */
  proto: "tcp" | "udp" | "unix";
  /** each connection starts with a PROXY protocol v2 header */
  proxyProtocol?: boolean;
  /** open connections (TCP) or flows (UDP) */
  connections?: number;
  connectionsTotal?: number;
  bytesIn?: number;
  bytesOut?: number;
  udp?: UdpStats;
}

/** The process's file descriptors: the limit, and whether accepting is paused at it. */
export interface FdState {
  limit: number;
  /** the hard limit the soft one may be raised to */
  hardLimit?: number;
  open?: number;
  /** accepting is paused: the process is at its limit */
  exhausted: boolean;
}

export interface DaemonState {
  /** via: how a vm:/// engine is reached ("through the pipe unix:///...") */
  engine: { url: string; via?: string; connected: boolean } | null;
  /** lastFailure: why the pipe is down (the relay client's last failure); the counters: relay-client.ts */
  pipe: {
    url: string;
    up: boolean;
    peer?: string;
    lastFailure?: string;
    reconnects?: number;
    resets?: number;
    failures?: number;
  };
  /** the daemon's version ("0.1.0+aeb65e9") */
  version?: string;
  binding: BindingPolicy;
  udp: UdpOptions;
  containers: number;
  ports: PortState[];
  fds?: FdState;
  /** what the forwarder reports listening in the VM, and whether it is published (vm-source.ts) */
  vmListeners?: VmListenerState[];
}

/** Open connections and bytes so far of a listener: TCP (or socket-forward) connections, or UDP flows and their counters. */
export function traffic(l: Listener): Partial<PortState> {
  if (l.kind === "udp") {
    const u = l.stats();
    return { connections: u.flows, connectionsTotal: u.flowsOpened, bytesIn: u.bytesIn, bytesOut: u.bytesOut, udp: u };
  }
  const t = l.stats();
  return { connections: l.connections, connectionsTotal: t.connectionsTotal, bytesIn: t.bytesIn, bytesOut: t.bytesOut };
}

const bracket = (ip: string) => (ip.includes(":") ? `[${ip}]` : ip);

export function portRow(
  w: WantedPort,
  status: PortState["status"],
  o: { id: string; source: PortState["source"]; error?: EdgeportError | string; listener?: Listener },
): PortState {
  const error = o.error;
  return {
    key: w.key,
    id: o.id,
    proto: w.proto,
    source: o.source,
    host: w.proto === "unix" ? socketUrl(w.hostIp) : `${bracket(w.hostIp)}:${w.hostPort}`,
    target: w.proto === "unix" ? socketUrl(w.targetIp) : `${bracket(w.targetIp)}:${w.targetPort}`,
    container: w.containerName,
    status,
    ...(w.proxyProtocol ? { proxyProtocol: true } : {}),
    ...(error === undefined ? {} : typeof error === "string" ? { error } : { error: error.message, code: error.code }),
    ...(o.listener ? traffic(o.listener) : {}),
  };
}
