/**
 * Which process holds a socket: the inode is looked for among the links of /proc/PID/fd. That
 * walks every process's descriptors, so it runs only for sockets not seen before, stops as soon as
 * every asked inode is found, and gives up past a bound of links read. A process the forwarder may
 * not look into (not root) simply stays unknown.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export interface SocketOwner {
  pid: number;
  /** /proc/PID/comm: the kernel's short name (15 characters at most) */
  name: string;
  /** argv, as far as it was readable */
  argv: string[];
}

/** At most this many fd links are read in one scan (a VM with a hundred processes has a few thousand). */
export const MAX_LINKS_PER_SCAN = 200_000;

function readOwner(pid: number): SocketOwner {
  let name = "";
  let argv: string[] = [];
  try {
    name = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    // the process left meanwhile
  }
  return { pid, name, argv };
}

/** The owners of the given socket inodes, as far as /proc tells (missing: not found or not readable). */
export function findOwners(inodes: ReadonlySet<number>, proc = "/proc"): Map<number, SocketOwner> {
  const found = new Map<number, SocketOwner>();
  if (inodes.size === 0) return found;
  let budget = MAX_LINKS_PER_SCAN;
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((d) => /^\d+$/.test(d));
  } catch {
    return found;
  }
  // this process first: its own sockets are the likeliest new ones
  pids.sort((a, b) => (Number(a) === process.pid ? -1 : Number(b) === process.pid ? 1 : 0));
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`${proc}/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    let owner: SocketOwner | null = null;
    for (const fd of fds) {
      if (--budget < 0) return found;
      let link: string;
      try {
        link = readlinkSync(`${proc}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!link.startsWith("socket:[")) continue;
      const inode = Number(link.slice(8, -1));
      if (!inodes.has(inode) || found.has(inode)) continue;
      owner ??= readOwner(Number(pid));
      found.set(inode, owner);
      if (found.size === inodes.size) return found;
    }
  }
  return found;
}

const ENGINE_NAMES = /^(dockerd|containerd|containerd-shim.*|docker-proxy|rootlesskit|vpnkit-forwarder)$/;

/**
 * Why a socket of this owner is never reported, or null: the forwarder's own, the engine's and
 * containerd's, dockerd's userland proxy (its own, or `edgeport docker-proxy`): the container
 * source publishes those ports.
 */
export function excludedOwner(o: SocketOwner, selfPid = process.pid): string | null {
  if (o.pid === selfPid) return "the forwarder's own socket";
  if (ENGINE_NAMES.test(o.name)) return `a socket of ${o.name}`;
  const [exe = "", sub] = o.argv;
  if (sub === "docker-proxy" && /(^|\/)edgeport[^/]*$/.test(exe)) return "a socket of edgeport docker-proxy";
  // dockerd starts its userland proxy (whatever userland-proxy-path names) with these flags
  const flags = new Set(o.argv.map((a) => a.replace(/^--?/, "").split("=")[0]));
  if (flags.has("container-ip") && flags.has("host-port")) return "a socket of dockerd's userland proxy";
  return null;
}
