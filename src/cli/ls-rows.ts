/**
 * `edgeport ls` rows from the API's listeners: one row per published spec, not per listener. The
 * listeners of one id that differ only by host address (127.0.0.1 and ::1 of one spec) share a
 * row, and consecutive ports of a range collapse into START-END. Rows sort by host port number.
 * Pure.
 */
import type { PortState } from "../publisher/daemon.ts";
import { EdgeportError } from "../shared/errors.ts";

export interface LsRow {
  id: string;
  /** `127.0.0.1,[::1]:8080->172.17.0.2:80/tcp`, or `unix:///a.sock->unix:///b.sock` for a socket forward */
  ports: string;
  proto: "tcp" | "udp" | "unix";
  /** 0 for a socket forward (they sort first) */
  hostPort: number;
  source: PortState["source"]["kind"];
  /** an ad-hoc port the daemon keeps in its state file: restored when it restarts */
  persisted: boolean;
  /** the container's name, or "" when the port is not a container's */
  container: string;
  status: PortState["status"];
  error?: string;
  proxyProtocol?: boolean;
  connections: number;
  connectionsTotal: number;
  bytesIn: number;
  bytesOut: number;
  /** the API's rows this one stands for */
  listeners: PortState[];
}

/** `1.2.3.4:80` or `[::1]:80` into its address part and port. */
const split = (hostPort: string): [string, number] => {
  const i = hostPort.lastIndexOf(":");
  return [hostPort.slice(0, i), Number(hostPort.slice(i + 1))];
};
const range = (a: number, b: number) => (a === b ? String(a) : `${a}-${b}`);
const family = (ip: string) => (ip.startsWith("[") ? 1 : 0);

interface Group {
  base: string;
  hosts: string[];
  hostPort: number;
  hostEnd: number;
  targetIp: string;
  targetPort: number;
  targetEnd: number;
  members: PortState[];
}

function groups(ports: PortState[]): Group[] {
  const byPort = new Map<string, Group>();
  for (const p of ports) {
    const [hostIp, hostPort] = split(p.host);
    const [targetIp, targetPort] = split(p.target);
    const base = [p.id, p.proto, p.status, p.error ?? "", p.proxyProtocol ? 1 : 0, targetIp].join("|");
    const k = `${base}|${hostPort}|${targetPort}`;
    const g = byPort.get(k);
    if (g) {
      if (!g.hosts.includes(hostIp)) g.hosts.push(hostIp);
      g.members.push(p);
    } else
      byPort.set(k, {
        base,
        hosts: [hostIp],
        hostPort,
        hostEnd: hostPort,
        targetIp,
        targetPort,
        targetEnd: targetPort,
        members: [p],
      });
  }
  const out: Group[] = [];
  const sorted = [...byPort.values()].sort((a, b) => a.hostPort - b.hostPort);
  for (const g of sorted) {
    g.hosts.sort((a, b) => family(a) - family(b) || a.localeCompare(b));
    const prev = out.findLast((x) => x.base === g.base && x.hosts.join() === g.hosts.join());
    if (prev && prev.hostEnd + 1 === g.hostPort && prev.targetEnd + 1 === g.targetPort) {
      prev.hostEnd = g.hostPort;
      prev.targetEnd = g.targetPort;
      prev.members.push(...g.members);
    } else out.push(g);
  }
  return out;
}

/** A socket forward is one path to one path: a row of its own, never grouped. */
const socketGroup = (p: PortState): Group => ({
  base: p.id,
  hosts: [p.host],
  hostPort: 0,
  hostEnd: 0,
  targetIp: p.target,
  targetPort: 0,
  targetEnd: 0,
  members: [p],
});

export function lsRows(ports: PortState[]): LsRow[] {
  const sum = (g: Group, f: (p: PortState) => number | undefined) => g.members.reduce((n, p) => n + (f(p) ?? 0), 0);
  const sockets = ports.filter((p) => p.proto === "unix");
  return [...sockets.map(socketGroup), ...groups(ports.filter((p) => p.proto !== "unix"))]
    .map((g): LsRow => {
      const p = g.members[0]!;
      return {
        id: p.id,
        ports:
          p.proto === "unix"
            ? `${p.host}->${p.target}`
            : `${g.hosts.join(",")}:${range(g.hostPort, g.hostEnd)}->${g.targetIp}:${range(g.targetPort, g.targetEnd)}/${p.proto}`,
        proto: p.proto,
        hostPort: g.hostPort,
        source: p.source.kind,
        persisted: p.source.persisted === true,
        container:
          p.source.kind === "container"
            ? (p.source.containerName ?? "")
            : p.source.kind === "vm"
              ? (p.source.process ?? "(vm)")
              : "",
        status: p.status,
        ...(p.error ? { error: p.error } : {}),
        ...(p.proxyProtocol ? { proxyProtocol: true } : {}),
        connections: sum(g, (x) => x.connections),
        connectionsTotal: sum(g, (x) => x.connectionsTotal),
        bytesIn: sum(g, (x) => x.bytesIn),
        bytesOut: sum(g, (x) => x.bytesOut),
        listeners: g.members,
      };
    })
    .sort((a, b) => a.hostPort - b.hostPort || a.proto.localeCompare(b.proto) || a.ports.localeCompare(b.ports));
}

/** The SOURCE column: `ad-hoc (persisted)` for a port the daemon restores when it restarts. */
export const sourceText = (r: LsRow): string => (r.persisted ? `${r.source} (persisted)` : r.source);

/** `--filter container=NAME` (name, or the start of the container's id; repeated: any of them). */
export function lsFilter(filters: string[]): (r: LsRow) => boolean {
  const names: string[] = [];
  for (const f of filters) {
    const m = /^container=(.+)$/.exec(f);
    if (!m) throw new EdgeportError("E_BAD_ARG", `--filter: "${f}" is not container=NAME (the one filter there is)`);
    names.push(m[1]!);
  }
  if (!names.length) return () => true;
  return (r) =>
    names.some(
      (n) => r.container === n || r.listeners.some((l) => n.length >= 4 && l.source.containerId?.startsWith(n)),
    );
}
