/**
 * Which destinations the VM forwarder may dial. The VM side is untrusted: only what the user
 * allowed (--allow) and the engine's container networks. Loopback, link-local and Unix
 * destinations need an explicit allow of their own; unspecified and multicast never pass.
 */

import { formatIp, isLinkLocal, isLoopback, isMulticast, isUnspecified, parseIp } from "../../shared/address.ts";
import { type Cidr, cidrContains, parseCidr } from "../../shared/cidr.ts";
import { EdgeportError } from "../../shared/errors.ts";
import type { Destination } from "../mux/codec.ts";

export type Verdict = { ok: true } | { ok: false; reason: string };

export interface DialPolicyOptions {
  /** --allow values: CIDRs, or unix:///path for one Unix socket */
  allow: string[];
  /** the engine's network subnets, when the forwarder follows an engine */
  engineSubnets?: () => Promise<string[]>;
}

/** The engine is asked at most this often when Opens miss the known networks. */
const REFRESH_GAP_MS = 500;

const SPECIAL = ["127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10"].map(parseCidr);

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

export function createDialPolicy(opts: DialPolicyOptions): DialPolicy {
  const cidrs: Cidr[] = [];
  const unixPaths = new Set<string>();
  for (const a of opts.allow) {
    if (a.startsWith("unix://")) {
      const path = a.slice("unix://".length);
      if (!path.startsWith("/"))
        throw new EdgeportError("E_BAD_ARG", `--allow ${a}: a Unix path must be absolute (unix:///path)`);
      unixPaths.add(path);
    } else cidrs.push(parseCidr(a));
  }
  let engine: Cidr[] = [];
  let lastRefresh = 0;
  let pending: Promise<void> | null = null;

  /** Asks the engine again; at most one request in flight and one per REFRESH_GAP_MS (a miss waits for it). */
  function refresh(): Promise<void> {
    if (!opts.engineSubnets) return Promise.resolve();
    pending ??= (async () => {
      const wait = lastRefresh + REFRESH_GAP_MS - Date.now();
      if (wait > 0) await Bun.sleep(wait);
      try {
        const subnets = await opts.engineSubnets!();
        engine = subnets.flatMap((s) => {
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
  }

  function decide(ipBytes: Uint8Array): Verdict {
    const text = formatIp(ipBytes);
    const ip = parseIp(text);
    if (isUnspecified(ip) || isMulticast(ip)) return { ok: false, reason: `${text} is not a unicast address` };
    const special = isLoopback(ip) || isLinkLocal(ip);
    if (special) {
      if (cidrs.some((c) => insideSpecial(c) && cidrContains(c, ip))) return { ok: true };
      const kind = isLoopback(ip) ? "loopback" : "link-local";
      return {
        ok: false,
        reason: `${text} is a ${kind} address of the VM; allow it explicitly with --allow ${text}/${ip.family === 4 ? 32 : 128}`,
      };
    }
    if (cidrs.some((c) => cidrContains(c, ip))) return { ok: true };
    if (engine.some((c) => cidrContains(c, ip))) return { ok: true };
    return { ok: false, reason: `${text} is outside the allowed networks (${describe()})` };
  }

  function describe(): string {
    const parts = [...cidrs.map((c) => c.text), ...[...unixPaths].map((p) => `unix://${p}`)];
    if (opts.engineSubnets)
      parts.push(
        engine.length ? `engine networks ${engine.map((c) => c.text).join(", ")}` : "engine networks (none yet)",
      );
    return parts.length ? parts.join(", ") : "nothing";
  }

  return {
    get allowsNothing() {
      return cidrs.length === 0 && unixPaths.size === 0 && !opts.engineSubnets;
    },
    describe,
    refresh,
    async check(dest) {
      if (dest.proto === "unix") {
        return unixPaths.has(dest.path)
          ? { ok: true }
          : {
              ok: false,
              reason: `Unix socket destinations are refused unless allowed with --allow unix://${dest.path}`,
            };
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
