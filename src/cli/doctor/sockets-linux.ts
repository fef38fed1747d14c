/** Linux: /proc/net/{tcp,tcp6,udp,udp6,unix} name a socket's inode, /proc/PID/fd names who holds it. */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { formatIp } from "../../shared/address.ts";
import type { HostSockets, Proto, SocketOwner } from "./sockets.ts";

export interface ProcNetEntry {
  address: string;
  port: number;
  /** TCP state (0A: LISTEN; 07 for an unconnected UDP socket) */
  state: number;
  uid: number;
  inode: number;
}

const hex4 = (h: string) => [6, 4, 2, 0].map((i) => Number.parseInt(h.slice(i, i + 2), 16));

/** /proc/net's address: IPv4 as one little-endian word, IPv6 as four. */
export function decodeProcAddress(h: string): string {
  if (h.length === 8) return hex4(h).join(".");
  return formatIp(Uint8Array.from([0, 8, 16, 24].flatMap((i) => hex4(h.slice(i, i + 8)))));
}

/** Parses /proc/net/tcp, tcp6, udp or udp6. */
export function parseProcNet(text: string): ProcNetEntry[] {
  const out: ProcNetEntry[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [addr, port] = f[1]!.split(":");
    if (!addr || !port) continue;
    out.push({
      address: decodeProcAddress(addr),
      port: Number.parseInt(port, 16),
      state: Number.parseInt(f[3]!, 16),
      uid: Number(f[7]),
      inode: Number(f[9]),
    });
  }
  return out;
}

/** Parses /proc/net/unix: the listening sockets (flag __SO_ACCEPTCON) with a path. */
export function parseProcNetUnix(text: string): { path: string; inode: number }[] {
  const out: { path: string; inode: number }[] = [];
  for (const line of text.split("\n").slice(1)) {
    const m = /^\s*[0-9a-f]+:\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+(\d+)\s+(.+)$/i.exec(
      line,
    );
    if (!m || (Number.parseInt(m[1]!, 16) & 0x10000) === 0 || m[2] === "0") continue;
    out.push({ path: m[3]!, inode: Number(m[2]) });
  }
  return out;
}

export interface ProcFs {
  read(path: string): string | null;
  list(dir: string): string[];
  link(path: string): string | null;
}

const realFs: ProcFs = {
  read: (p) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return null;
    }
  },
  list: (d) => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  },
  link: (p) => {
    try {
      return readlinkSync(p);
    } catch {
      return null;
    }
  },
};

/** pid and program of the processes holding these socket inodes (those this user may see). */
function holders(fs: ProcFs, inodes: Set<number>): Map<number, { pid: number; program: string }> {
  const found = new Map<number, { pid: number; program: string }>();
  for (const pid of fs.list("/proc").filter((d) => /^\d+$/.test(d))) {
    for (const fd of fs.list(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(fs.link(`/proc/${pid}/fd/${fd}`) ?? "");
      if (!m || !inodes.has(Number(m[1])) || found.has(Number(m[1]))) continue;
      found.set(Number(m[1]), { pid: Number(pid), program: (fs.read(`/proc/${pid}/comm`) ?? "?").trim() });
    }
    if (found.size === inodes.size) break;
  }
  return found;
}

export function linuxSockets(fs: ProcFs = realFs): HostSockets {
  return {
    async listeners(proto: Proto, port: number): Promise<SocketOwner[]> {
      const want = proto === "tcp" ? 0x0a : 0x07;
      const entries = ["", "6"]
        .flatMap((v) => parseProcNet(fs.read(`/proc/net/${proto}${v}`) ?? ""))
        .filter((e) => e.port === port && e.state === want && e.inode !== 0);
      const who = holders(fs, new Set(entries.map((e) => e.inode)));
      return entries.map((e) => ({ address: e.address, port: e.port, uid: e.uid, ...who.get(e.inode) }));
    },
    async unixOwner(path: string) {
      const inodes = parseProcNetUnix(fs.read("/proc/net/unix") ?? "").filter((e) => e.path === path);
      if (inodes.length === 0) return null;
      const who = holders(fs, new Set(inodes.map((e) => e.inode)));
      const [first] = [...who.values()];
      return first ?? {};
    },
  };
}
