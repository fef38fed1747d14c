/**
 * The firewall planner, pure: listeners in, the rules that must exist out. Only listeners on a
 * non-loopback address need a rule; consecutive ports of one protocol and address become one
 * ranged rule, so a 1,000-port range is one rule (one change) on every backend.
 */
import { isLoopback, parseIp } from "../shared/address.ts";

export interface FirewallListener {
  proto: "tcp" | "udp";
  /** the exact bind address: an IP, or 0.0.0.0 / :: for all of one family */
  address: string;
  port: number;
}

export interface RuleSpec {
  /** stable identity of the rule: `tcp:192.0.2.1:8000-8099` */
  id: string;
  proto: "tcp" | "udp";
  /** canonical address text */
  address: string;
  family: 4 | 6;
  /** true for 0.0.0.0 and :: (every address of that family) */
  any: boolean;
  portLo: number;
  portHi: number;
}

export const ruleId = (proto: string, address: string, lo: number, hi: number): string =>
  `${proto}:${address.includes(":") ? `[${address}]` : address}:${lo === hi ? lo : `${lo}-${hi}`}`;

/** Rules for these listeners, sorted by id. Unparseable addresses are skipped (never widened). */
export function planRules(listeners: readonly FirewallListener[]): RuleSpec[] {
  const groups = new Map<
    string,
    { proto: "tcp" | "udp"; address: string; family: 4 | 6; any: boolean; ports: Set<number> }
  >();
  for (const l of listeners) {
    let ip: ReturnType<typeof parseIp>;
    try {
      ip = parseIp(l.address);
    } catch {
      continue;
    }
    if (isLoopback(ip)) continue;
    const k = `${l.proto} ${ip.text}`;
    let g = groups.get(k);
    if (!g) {
      g = {
        proto: l.proto,
        address: ip.text,
        family: ip.family,
        any: ip.bytes.every((b) => b === 0),
        ports: new Set(),
      };
      groups.set(k, g);
    }
    g.ports.add(l.port);
  }
  const out: RuleSpec[] = [];
  for (const g of groups.values()) {
    const ports = [...g.ports].sort((a, b) => a - b);
    let lo = ports[0]!;
    let prev = lo;
    const flush = (hi: number) =>
      out.push({
        id: ruleId(g.proto, g.address, lo, hi),
        proto: g.proto,
        address: g.address,
        family: g.family,
        any: g.any,
        portLo: lo,
        portHi: hi,
      });
    for (const p of ports.slice(1)) {
      if (p === prev + 1) {
        prev = p;
        continue;
      }
      flush(prev);
      lo = prev = p;
    }
    flush(prev);
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * The owner tag every rule carries: `edgeport:<instance>:<pid>@<start>:<rule id>`, where start is
 * the process's start time (/proc/PID/stat field 22) so that a reused pid is not taken for the
 * owner. Tags of older versions (`edgeport:<instance>:<pid>:<rule id>`) still parse, without one.
 */
export const TAG_PREFIX = "edgeport:";
export const ownerTag = (instance: string, pid: number, id: string, start?: number): string =>
  `${TAG_PREFIX}${instance}:${pid}${start === undefined ? "" : `@${start}`}:${id}`;

export function parseOwnerTag(tag: string): { instance: string; pid: number; start?: number; id: string } | null {
  const m = /^edgeport:([0-9a-f]{8}):(\d+)(?:@(\d+))?:((?:tcp|udp):.+)$/.exec(tag);
  if (!m) return null;
  return { instance: m[1]!, pid: Number(m[2]), ...(m[3] !== undefined ? { start: Number(m[3]) } : {}), id: m[4]! };
}

/** What must change: rule ids to add and to remove, given what is applied. */
export function diffRules(
  wanted: readonly RuleSpec[],
  applied: ReadonlySet<string>,
): { add: RuleSpec[]; remove: string[] } {
  const want = new Set(wanted.map((r) => r.id));
  return { add: wanted.filter((r) => !applied.has(r.id)), remove: [...applied].filter((id) => !want.has(id)).sort() };
}
