/**
 * What listens in the VM, asked at a bounded interval (250 ms) and diffed: through netlink
 * sock_diag (sock-diag.ts), or where that is not available by reading /proc/net/{tcp,tcp6,udp,udp6}
 * (a table whose text did not change is not parsed again). The owner of a socket is looked up once,
 * when its inode first shows up. Sockets of the forwarder itself, of the engine and of dockerd's
 * userland proxy are never reported.
 *
 * Measured with 1,000 unchanging listeners (docs/operations.md, "Listeners in the VM"): /proc costs
 * over 1 % of a core at 250 ms, sock_diag well under it.
 */
import { readFileSync } from "node:fs";
import { idKey, MAX_REPORTED, type VmListener } from "../../control/listeners.ts";
import { excludedOwner, findOwners, type SocketOwner } from "./owners.ts";
import { PROC_NET_FILES, type ProcSocket, parseProcNet } from "./proc-net.ts";
import { openSockDiag } from "./sock-diag.ts";

export interface ListenerChange {
  add: VmListener[];
  remove: VmListener[];
}

export interface ListenerWatcherOptions {
  intervalMs?: number;
  /** reads a /proc/net table by name (`tcp`, `udp6`); null when it is missing (no IPv6). Given: /proc is read, not sock_diag */
  read?: (file: string) => string | null;
  owners?: (inodes: ReadonlySet<number>) => ReadonlyMap<number, SocketOwner>;
  exclude?: (o: SocketOwner) => string | null;
  /** told once when more than MAX_REPORTED listeners exist */
  onTooMany?: (count: number) => void;
}

export interface ListenerWatcher {
  /** what listens now, as last read */
  current(): VmListener[];
  /** called after each read that changed something */
  subscribe(f: (change: ListenerChange) => void): () => void;
  /** reads now (the timer does it every interval) */
  poll(): void;
  close(): void;
}

const readProc = (file: string): string | null => {
  try {
    return readFileSync(`/proc/net/${file}`, "latin1");
  } catch {
    return null;
  }
};

interface Known {
  listener: VmListener;
  inode: number;
  excluded: string | null;
}

export function createListenerWatcher(o: ListenerWatcherOptions = {}): ListenerWatcher {
  const read = o.read ?? readProc;
  const diag = o.read ? null : openSockDiag();
  const owners = o.owners ?? findOwners;
  const exclude = o.exclude ?? ((x: SocketOwner) => excludedOwner(x));
  const lastText = new Map<string, string>();
  const lastParsed = new Map<string, ProcSocket[]>();
  let known = new Map<string, Known>();
  const subscribers = new Set<(c: ListenerChange) => void>();
  let warnedTooMany = false;

  /** Every listening socket of /proc; a table that did not change is not parsed again. */
  function fromProc(): ProcSocket[] {
    const out: ProcSocket[] = [];
    for (const { file, proto } of PROC_NET_FILES) {
      const text = read(file) ?? "";
      let parsed = lastParsed.get(file);
      if (parsed === undefined || lastText.get(file) !== text) {
        parsed = parseProcNet(text, proto);
        lastText.set(file, text);
        lastParsed.set(file, parsed);
      }
      out.push(...parsed);
    }
    return out;
  }

  /** Every listening socket now, by key (null: nothing changed, or the dump failed: keep the last picture). */
  function sockets(): Map<string, ProcSocket> | null {
    const list = diag ? diag.dump() : fromProc();
    if (!list || list === "same") return null;
    const out = new Map<string, ProcSocket>();
    for (const s of list) {
      const key = idKey(s);
      if (!out.has(key)) out.set(key, s);
    }
    return out;
  }

  function poll(): void {
    const now = sockets();
    if (!now) return;
    const fresh = new Set<number>();
    for (const [key, s] of now) if (known.get(key)?.inode !== s.inode && s.inode !== 0) fresh.add(s.inode);
    const found = fresh.size ? owners(fresh) : new Map<number, SocketOwner>();
    const next = new Map<string, Known>();
    const change: ListenerChange = { add: [], remove: [] };
    for (const [key, s] of now) {
      const old = known.get(key);
      if (old && old.inode === s.inode) {
        next.set(key, old);
        continue;
      }
      const owner = found.get(s.inode);
      const listener: VmListener = {
        proto: s.proto,
        ip: s.ip,
        port: s.port,
        ...(owner?.name ? { process: owner.name } : {}),
      };
      const k: Known = { listener, inode: s.inode, excluded: owner ? exclude(owner) : null };
      next.set(key, k);
      if (old && !old.excluded) change.remove.push(old.listener);
      if (!k.excluded) change.add.push(listener);
    }
    for (const [key, old] of known) if (!now.has(key) && !old.excluded) change.remove.push(old.listener);
    known = next;
    if (!change.add.length && !change.remove.length) return;
    for (const f of subscribers) f(change);
  }

  poll();
  const timer = setInterval(poll, o.intervalMs ?? 250);
  return {
    current() {
      const all = [...known.values()].filter((k) => !k.excluded).map((k) => k.listener);
      if (all.length > MAX_REPORTED && !warnedTooMany) {
        warnedTooMany = true;
        o.onTooMany?.(all.length);
      }
      return all.slice(0, MAX_REPORTED);
    },
    subscribe(f) {
      subscribers.add(f);
      return () => subscribers.delete(f);
    },
    poll,
    close() {
      clearInterval(timer);
      subscribers.clear();
      diag?.close();
    },
  };
}
