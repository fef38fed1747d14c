/**
 * Linux nftables. An accept in a table of its own would not override a drop in the host's table
 * (every base chain on the input hook must accept), so edgeport inserts its accepts at the top of
 * each input base chain whose policy is drop, tagged with a comment, and removes them by handle.
 * It reads only chain metadata (`nft -j list chains`) and, for input chains, the rules whose
 * comment is an edgeport tag; the rest of the ruleset is never parsed or rewritten. Each rule is
 * scoped to the exact address and port range and, where edgeport runs in a cgroup v2 of its own,
 * to edgeport's own sockets (`socket cgroupv2 level N "path"`).
 */
import { z } from "zod";
import { ownerTag, parseOwnerTag, type RuleSpec, TAG_PREFIX } from "./plan.ts";
import { type Backend, CommandError, type OwnedRule, type Owner, type Runner, runOk } from "./types.ts";

export const NFT = "/usr/sbin/nft";
const FAMILIES = new Set(["inet", "ip", "ip6"]);

interface Chain {
  family: string;
  table: string;
  name: string;
}
export interface NftRef extends Chain {
  handle: number;
}

/** The cgroup v2 scope of edgeport's sockets, when it has one of its own. */
export interface CgroupScope {
  /** path relative to the cgroup v2 root, without a leading slash */
  path: string;
  level: number;
  /** where cgroup v2 is mounted; nft resolves paths under /sys/fs/cgroup only */
  mount: string;
}

const ChainsJson = z.object({
  nftables: z.array(
    z.union([
      z.object({
        chain: z.object({
          family: z.string(),
          table: z.string(),
          name: z.string(),
          hook: z.string().optional(),
          policy: z.string().optional(),
        }),
      }),
      z.record(z.string(), z.unknown()),
    ]),
  ),
});
const RuleJson = z.object({
  family: z.string(),
  table: z.string(),
  chain: z.string(),
  handle: z.number(),
  comment: z.string().optional(),
});
const RulesJson = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });

const quote = (s: string) => `"${s.replace(/["\\]/g, "")}"`;
/** nft scripts take table and chain names bare; a chain whose name would need quoting is left alone */
const SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const chainText = (c: Chain) => `${c.family} ${c.table} ${c.name}`;

/** The match part of a rule: address (or family), protocol and port range, cgroup. Pure. */
export function nftMatch(r: RuleSpec, cgroup: CgroupScope | null): string {
  const addr = r.any
    ? `meta nfproto ${r.family === 4 ? "ipv4" : "ipv6"}`
    : `${r.family === 4 ? "ip" : "ip6"} daddr ${r.address}`;
  const ports = r.portLo === r.portHi ? `${r.portLo}` : `${r.portLo}-${r.portHi}`;
  const scope = cgroup ? ` socket cgroupv2 level ${cgroup.level} ${quote(cgroup.path)}` : "";
  return `${addr} ${r.proto} dport ${ports}${scope}`;
}

/** The rule families a chain can hold: an `ip` chain never sees IPv6, an `ip6` chain never IPv4. */
const chainTakes = (c: Chain, r: RuleSpec) =>
  c.family === "inet" || (c.family === "ip" ? r.family === 4 : r.family === 6);

/** The nft script of one batch: deletes by handle, then inserts at the top of each drop chain. Pure. */
export function nftBatch(
  add: RuleSpec[],
  remove: NftRef[],
  chains: Chain[],
  owner: Owner,
  cgroup: CgroupScope | null,
): string {
  const lines: string[] = [];
  for (const r of remove) lines.push(`delete rule ${chainText(r)} handle ${r.handle}`);
  for (const c of chains) {
    for (const r of add) {
      if (chainTakes(c, r))
        lines.push(
          `insert rule ${chainText(c)} ${nftMatch(r, cgroup)} accept comment ${quote(ownerTag(owner.instance, owner.pid, r.id, owner.start))}`,
        );
    }
  }
  return lines.length ? `${lines.join("\n")}\n` : "";
}

export function createNftablesBackend(o: { run: Runner; cgroup: CgroupScope | null; nft?: string }): Backend {
  const nft = o.nft ?? NFT;
  // nft looks cgroup v2 paths up under /sys/fs/cgroup; on a hybrid host (cgroup v2 mounted at
  // /sys/fs/cgroup/unified) it runs in a private mount namespace where that mount is bind-mounted there
  const wrap = (args: string[]): string[] =>
    o.cgroup && o.cgroup.mount !== "/sys/fs/cgroup"
      ? [
          "/usr/bin/unshare",
          "--mount",
          "--propagation",
          "private",
          "--",
          "/bin/sh",
          "-c",
          'mount --bind "$0" /sys/fs/cgroup && exec "$@"',
          o.cgroup.mount,
          nft,
          ...args,
        ]
      : [nft, ...args];

  async function inputChains(): Promise<(Chain & { policy?: string })[]> {
    const out = await runOk(o.run, [nft, "-j", "list", "chains"]);
    const parsed = ChainsJson.parse(JSON.parse(out || '{"nftables":[]}'));
    const chains: (Chain & { policy?: string })[] = [];
    for (const item of parsed.nftables) {
      const c = (item as { chain?: { family: string; table: string; name: string; hook?: string; policy?: string } })
        .chain;
      if (c && c.hook === "input" && FAMILIES.has(c.family) && SAFE_NAME.test(c.table) && SAFE_NAME.test(c.name))
        chains.push({ family: c.family, table: c.table, name: c.name, policy: c.policy });
    }
    return chains;
  }

  async function ownedIn(c: Chain): Promise<OwnedRule[]> {
    const out = await runOk(o.run, [nft, "-j", "-a", "list", "chain", c.family, c.table, c.name]);
    const found: OwnedRule[] = [];
    for (const item of RulesJson.parse(JSON.parse(out)).nftables) {
      if (!("rule" in item)) continue;
      const r = RuleJson.safeParse(item.rule);
      if (!r.success || !r.data.comment?.startsWith(TAG_PREFIX)) continue;
      const tag = parseOwnerTag(r.data.comment);
      if (!tag) continue;
      const ref: NftRef = { family: r.data.family, table: r.data.table, name: r.data.chain, handle: r.data.handle };
      found.push({ ...tag, where: `${ref.family} ${ref.table} ${ref.name} handle ${ref.handle}`, ref });
    }
    return found;
  }

  return {
    name: "nftables",
    async list() {
      const all: OwnedRule[] = [];
      for (const c of await inputChains()) all.push(...(await ownedIn(c)));
      return all;
    },
    async apply(add, remove, owner) {
      const chains = add.length ? (await inputChains()).filter((c) => c.policy === "drop") : [];
      const script = nftBatch(
        add,
        remove.map((r) => r.ref as NftRef),
        chains,
        owner,
        o.cgroup,
      );
      if (!script) return [];
      const argv = wrap(["-j", "-e", "-a", "-f", "-"]);
      const result = await o.run(argv, { stdin: script, mutates: true });
      if (result.code !== 0) throw new CommandError(argv, result);
      if (!result.stdout.trim()) return []; // a dry run prints the script instead
      const added: OwnedRule[] = [];
      for (const item of RulesJson.parse(JSON.parse(result.stdout)).nftables) {
        const ins = (item as { insert?: { rule?: unknown } }).insert?.rule;
        const rule = RuleJson.safeParse(ins);
        if (!rule.success || !rule.data.comment) continue;
        const tag = parseOwnerTag(rule.data.comment);
        if (!tag) continue;
        const ref: NftRef = {
          family: rule.data.family,
          table: rule.data.table,
          name: rule.data.chain,
          handle: rule.data.handle,
        };
        added.push({ ...tag, where: `${ref.family} ${ref.table} ${ref.name} handle ${ref.handle}`, ref });
      }
      return added;
    },
  };
}

/** edgeport's cgroup v2 scope from /proc/self/cgroup and /proc/self/mountinfo; null in the root cgroup or without cgroup v2. */
export function cgroupScopeFrom(procCgroup: string, mountinfo: string): CgroupScope | null {
  const line = procCgroup.split("\n").find((l) => l.startsWith("0::"));
  const path = line?.slice(3).trim().replace(/^\/+/, "").replace(/\/+$/, "");
  if (!path || path.includes('"')) return null;
  const mnt = mountinfo
    .split("\n")
    .map((l) => l.split(" "))
    .find((f) => f[f.indexOf("-") + 1] === "cgroup2");
  if (!mnt) return null;
  return { path, level: path.split("/").length, mount: mnt[4]! };
}
