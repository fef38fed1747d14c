/**
 * Who holds a host port, or a unix socket, where the OS tells: /proc on Linux, lsof on macOS,
 * Get-NetTCPConnection on Windows. One small interface, so the checks are tested with a fake and
 * each OS's parser with captured text.
 */
import { isUnspecified, parseIp } from "../../shared/address.ts";

export type Proto = "tcp" | "udp";

export interface SocketOwner {
  /** absent when the OS does not say (another user's process without root) */
  pid?: number;
  program?: string;
  uid?: number;
  /** the address and port it is bound to */
  address: string;
  port: number;
}

export interface HostSockets {
  /** sockets listening (tcp) or bound (udp) on this port, any address */
  listeners(proto: Proto, port: number): Promise<SocketOwner[]>;
  /** the process that listens on a unix socket path, null when none does (or the OS does not say) */
  unixOwner(path: string): Promise<Omit<SocketOwner, "address" | "port"> | null>;
}

/** An owner that stands in the way of binding `address`: the same address, or either is unspecified, same family. */
export function blocks(owner: SocketOwner, address: string): boolean {
  try {
    const a = parseIp(owner.address);
    const b = parseIp(address);
    if (a.text === b.text) return true;
    // a v6 wildcard without IPV6_V6ONLY also takes the v4 port (Linux's default, Windows' dual stack)
    if (isUnspecified(a) && (a.family === b.family || a.family === 6)) return true;
    return isUnspecified(b) && a.family === b.family;
  } catch {
    return false;
  }
}

export function describeOwner(o: Omit<SocketOwner, "address" | "port"> & Partial<SocketOwner>): string {
  const where =
    o.address !== undefined ? ` on ${o.address.includes(":") ? `[${o.address}]` : o.address}:${o.port}` : "";
  if (o.pid === undefined)
    return `a process${o.uid !== undefined ? ` of uid ${o.uid}` : ""} the OS does not name (run as root or administrator to see it)${where}`;
  return `pid ${o.pid} (${o.program ?? "?"})${o.uid !== undefined ? `, uid ${o.uid}` : ""}${where}`;
}

/** A HostSockets that knows nothing: platforms without a lookup. */
export const noSockets: HostSockets = { listeners: async () => [], unixOwner: async () => null };
