/**
 * Which destinations the VM forwarder may dial. The VM side is untrusted: only what the user
 * allowed (--allow) and the engine's container networks. Loopback, link-local and Unix
 * destinations need an explicit allow of their own; so do the VM's own addresses (an allowed
 * subnet holds the bridge gateway, where every VM service bound to the wildcard answers) and the
 * network and broadcast addresses of an allowed subnet or of the VM's interfaces: those need an
 * --allow that names them exactly (a /32 or /128). Unspecified, multicast and IPv4-compatible
 * IPv6 addresses never pass. Pure: the VM's interface addresses are injected.
 */

import {
  formatIp,
  type IpAddress,
  isLinkLocal,
  isLoopback,
  isMulticast,
  isUnspecified,
  parseIp,
} from "../../shared/address.ts";
import { type Cidr, cidrContains, parseCidr } from "../../shared/cidr.ts";
import { EdgeportError } from "../../shared/errors.ts";
import type { Destination } from "../mux/codec.ts";

export type Verdict = { ok: true } | { ok: false; reason: string };

export interface DialPolicyOptions {
  /** --allow values: CIDRs, or unix:///path for one Unix socket */
  allow: string[];
  /** the engine's network subnets, when the forwarder follows an engine */
  engineSubnets?: () => Promise<string[]>;
  /**
   * The engine's own socket (--engine unix:///path): allowed without an --allow of its own, so
   * that the host can follow the engine through the pipe (--engine vm:///path). That path only.
   */
  engineSocket?: string;
  /**
   * The VM's own interface addresses with their prefix ("172.17.0.1/16"), asked at every check
   * (the caller keeps them fresh: interfaces come and go with the engine's networks)
   */
  localInterfaces?: () => readonly string[];
  /**
   * A listener of the VM the forwarder reports and the host publishes (--report-listeners): dialled
   * even on the VM's loopback or own addresses. Exactly those: the rest of loopback stays refused.
   */
  reportedListener?: (target: { proto: "tcp" | "udp"; ip: string; port: number }) => Promise<boolean>;
}

/** The engine is asked at most this often when Opens miss the known networks. */
const REFRESH_GAP_MS = 500;

const SPECIAL = ["127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10"].map(parseCidr);

/** The network address of a subnet, and for IPv4 its broadcast address (none for /31, /32, /127, /128). */
function edgesOf(c: Cidr): { net: string; broadcast: string | null } | null {
  const max = c.family === 4 ? 32 : 128;
  if (c.prefix > max - 2) return null;
  const b = c.bytes.slice();
  for (let bit = c.prefix; bit < max; bit++) b[bit >> 3]! |= 0x80 >> (bit & 7);
  return { net: formatIp(c.bytes), broadcast: c.family === 4 ? formatIp(b) : null };
}

/** ::a.b.c.d (RFC 4291's deprecated form; :: and ::1 excluded): an IPv4 address in IPv6 clothing. */
const isV4Compatible = (ip: IpAddress) =>
  ip.family === 6 &&
  ip.bytes.subarray(0, 12).every((x) => x === 0) &&
  (ip.bytes[12]! | ip.bytes[13]! | ip.bytes[14]!) !== 0;

/** The VM's own addresses, and the network and broadcast addresses of its interfaces' subnets. */
function ownAddresses(interfaces: readonly string[]): Map<string, string> {
  const own = new Map<string, string>();
  for (const entry of interfaces) {
    let c: Cidr;
    try {
      c = parseCidr(entry);
    } catch {
      continue; // a zone id (fe80::1%eth0) or the like: link-local is refused anyway
    }
    const e = edgesOf(c);
    if (e) {
      own.set(e.net, `the network address of the VM's subnet ${c.text}`);
      if (e.broadcast) own.set(e.broadcast, `the broadcast address of the VM's subnet ${c.text}`);
    }
    own.set(parseIp(entry.split("/")[0]!).text, "an address of the VM itself");
  }
  return own;
}

/** An allow entry may open a special range only when it lies entirely inside that range. */
const insideSpecial = (c: Cidr) =>
  SPECIAL.some((s) => s.family === c.family && c.prefix >= s.prefix && cidrContains(s, parseIp(c.text.split("/")[0]!)));

export interface DialPolicy {
  check(dest: Destination): Promise<Verdict>;
  /** a one-line summary for the start-up log */
  describe(): string;
  readonly allowsNothing: boolean;
  /** asks the engine for its networks now */
  refresh(): Promise<void>;
}

/** --allow values: CIDRs, and unix:///path entries (each one path). */
function parseAllowList(allow: readonly string[]): { cidrs: Cidr[]; unixPaths: Set<string> } {
  const cidrs: Cidr[] = [];
  const unixPaths = new Set<string>();
  for (const a of allow) {
    if (a.startsWith("unix://")) {
      const path = a.slice("unix://".length);
      if (!path.startsWith("/"))
        throw new EdgeportError("E_BAD_ARG", `--allow ${a}: a Unix path must be absolute (unix:///path)`);
      unixPaths.add(path);
    } else cidrs.push(parseCidr(a));
  }
  return { cidrs, unixPaths };
}

/** The engine's subnets as last asked: at most one request in flight and one per REFRESH_GAP_MS (a miss waits for it). */
function engineSubnetCache(ask: (() => Promise<string[]>) | undefined) {
  let list: Cidr[] = [];
  let lastRefresh = 0;
  let pending: Promise<void> | null = null;
  return {
    get list(): readonly Cidr[] {
      return list;
    },
    refresh(): Promise<void> {
      if (!ask) return Promise.resolve();
      pending ??= (async () => {
        const wait = lastRefresh + REFRESH_GAP_MS - Date.now();
        if (wait > 0) await Bun.sleep(wait);
        try {
          list = (await ask()).flatMap((s) => {
            try {
              return [parseCidr(s)];
            } catch {
              return [];
            }
          });
        } finally {
          lastRefresh = Date.now();
          pending = null;
        }
      })();
      return pending;
    },
  };
}

/**
 * Why an address is refused although a subnet may hold it: the VM itself, or a subnet's network or
 * broadcast address (null: neither). The interface list is re-digested only when the caller's changes.
 */
function ownAddressCheck(localInterfaces: (() => readonly string[]) | undefined, subnets: () => readonly Cidr[]) {
  let ownFrom: readonly string[] | null = null;
  let own = new Map<string, string>();
  return (ip: IpAddress): string | null => {
    const interfaces = localInterfaces?.() ?? [];
    if (interfaces !== ownFrom) {
      own = ownAddresses(interfaces);
      ownFrom = interfaces;
    }
    const why = own.get(ip.text);
    if (why) return why;
    for (const c of subnets()) {
      const e = cidrContains(c, ip) ? edgesOf(c) : null;
      if (e?.net === ip.text) return `the network address of ${c.text}`;
      if (e?.broadcast === ip.text) return `the broadcast address of ${c.text}`;
    }
    return null;
  };
}

export function createDialPolicy(opts: DialPolicyOptions): DialPolicy {
  const { cidrs, unixPaths } = parseAllowList(opts.allow);
  const engine = engineSubnetCache(opts.engineSubnets);
  const refresh = () => engine.refresh();
  const ownReason = ownAddressCheck(opts.localInterfaces, () => [...cidrs, ...engine.list]);

  function decide(ipBytes: Uint8Array): Verdict {
    // the canonical form: an IPv4-mapped address on the wire is the IPv4 address it maps
    const ip = parseIp(formatIp(ipBytes));
    const text = ip.text;
    if (isUnspecified(ip) || isMulticast(ip)) return { ok: false, reason: `${text} is not a unicast address` };
    if (isV4Compatible(ip))
      return { ok: false, reason: `${text} is an IPv4-compatible IPv6 address (deprecated): write the IPv4 address` };
    const exactly = `--allow ${text}/${ip.family === 4 ? 32 : 128}`;
    const special = isLoopback(ip) || isLinkLocal(ip);
    if (special) {
      if (cidrs.some((c) => insideSpecial(c) && cidrContains(c, ip))) return { ok: true };
      const kind = isLoopback(ip) ? "loopback" : "link-local";
      return { ok: false, reason: `${text} is a ${kind} address of the VM; allow it explicitly with ${exactly}` };
    }
    const named = cidrs.some((c) => c.prefix === (c.family === 4 ? 32 : 128) && cidrContains(c, ip));
    if (named) return { ok: true };
    const ownWhy = ownReason(ip);
    if (ownWhy) return { ok: false, reason: `${text} is ${ownWhy}; allow it explicitly with ${exactly}` };
    if (cidrs.some((c) => cidrContains(c, ip))) return { ok: true };
    if (engine.list.some((c) => cidrContains(c, ip))) return { ok: true };
    return { ok: false, reason: `${text} is outside the allowed networks (${describe()})` };
  }

  function describe(): string {
    const parts = [...cidrs.map((c) => c.text), ...[...unixPaths].map((p) => `unix://${p}`)];
    if (opts.engineSubnets)
      parts.push(
        engine.list.length
          ? `engine networks ${engine.list.map((c) => c.text).join(", ")}`
          : "engine networks (none yet)",
      );
    if (opts.engineSocket && !unixPaths.has(opts.engineSocket)) parts.push(`unix://${opts.engineSocket} (the engine)`);
    if (opts.reportedListener) parts.push("the reported listeners the host publishes");
    return parts.length ? parts.join(", ") : "nothing";
  }

  return {
    get allowsNothing() {
      return (
        cidrs.length === 0 &&
        unixPaths.size === 0 &&
        !opts.engineSubnets &&
        !opts.reportedListener &&
        !opts.engineSocket
      );
    },
    describe,
    refresh,
    async check(dest) {
      if (dest.proto === "unix") {
        return unixPaths.has(dest.path) || dest.path === opts.engineSocket
          ? { ok: true }
          : {
              ok: false,
              reason: `Unix socket destinations are refused unless allowed with --allow unix://${dest.path}`,
            };
      }
      if (opts.reportedListener) {
        const target = { proto: dest.proto, ip: parseIp(formatIp(dest.ip)).text, port: dest.port };
        if (await opts.reportedListener(target)) return { ok: true };
      }
      const first = decide(dest.ip);
      if (first.ok || !opts.engineSubnets) return first;
      // a container on a network created since the last look: ask the engine again (rate-limited)
      try {
        await refresh();
      } catch (e) {
        return { ok: false, reason: `${first.reason}; the engine could not be asked: ${(e as Error).message}` };
      }
      return decide(dest.ip);
    },
  };
}
