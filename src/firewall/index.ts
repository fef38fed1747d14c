/**
 * The host firewall, off the publish path: sync() records the listeners that exist and returns at
 * once; one worker applies the difference in a single batch per round, so a burst of changes
 * (a 1,000-port range) is one transaction. A failing command is logged once per message and
 * retried, never fatal. At start the rules of dead instances are pruned; close() removes every
 * rule this instance wrote.
 */
import { existsSync, readFileSync } from "node:fs";
import type { ConsolaInstance } from "consola";
import { EdgeportError } from "../shared/errors.ts";
import { isAliveWith, type LivenessDeps, processStartTime } from "./liveness.ts";
import { createMacosBackend } from "./macos.ts";
import { cgroupScopeFrom, createNftablesBackend, NFT } from "./nftables.ts";
import { diffRules, type FirewallListener, planRules } from "./plan.ts";
import type { Backend, OwnedRule, Owner, Runner } from "./types.ts";
import { createWindowsBackend, powershellPath } from "./windows.ts";

export type { FirewallListener } from "./plan.ts";
export const FIREWALL_MODES = ["auto", "nftables", "windows", "macos", "none"] as const;
export type FirewallMode = (typeof FIREWALL_MODES)[number];

export interface Firewall {
  readonly backend: Backend["name"];
  readonly instance: string;
  /** the listeners that exist now; applied in the background */
  sync(listeners: readonly FirewallListener[]): void;
  /** resolves when everything asked so far was applied (or failed and was reported) */
  settled(): Promise<void>;
  /** removes the rules of dead instances; returns them */
  prune(): Promise<OwnedRule[]>;
  /** removes every rule of this instance */
  close(): Promise<void>;
  /** rules this instance has applied, by id */
  applied(): string[];
  lastError(): string | null;
}

/** The real command runner; with dryRun, commands that change something are logged, not run. */
export function commandRunner(
  o: { dryRun?: boolean; log?: ConsolaInstance; print?: (line: string) => void } = {},
): Runner {
  return async (argv, opts = {}) => {
    if (o.dryRun && opts.mutates) {
      const line = `[dry run] ${argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ")}${opts.stdin ? ` <<'EOF'\n${opts.stdin}EOF` : ""}`;
      (o.print ?? ((l: string) => o.log?.info(l)))(line);
      return { code: 0, stdout: "", stderr: "" };
    }
    let p: Bun.Subprocess<"ignore" | Uint8Array, "pipe", "pipe">;
    try {
      p = Bun.spawn(argv, {
        stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
    } catch (e) {
      return { code: 127, stdout: "", stderr: `${argv[0]}: ${(e as Error).message}` };
    }
    const [stdout, stderr, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    return { code, stdout, stderr };
  };
}

/** The backend for a mode; `auto` picks by platform and what is installed. */
export function selectBackend(
  mode: FirewallMode,
  o: {
    run: Runner;
    program: string;
    platform: string;
    uid: number;
    env?: Readonly<Record<string, string | undefined>>;
    log?: ConsolaInstance;
    exists?: (path: string) => boolean;
  },
): Backend {
  const platform = o.platform;
  const exists = o.exists ?? existsSync;
  let m = mode;
  if (m === "auto") {
    // nft needs CAP_NET_ADMIN: a user's edgeport leaves the firewall to the administrator
    const root = o.uid === 0;
    const ps = powershellPath(o.env ?? {});
    // without PowerShell every batch would fail and be retried forever: say it once, write no rules
    if (platform === "win32" && !exists(ps))
      o.log?.warn(
        `firewall: --firewall auto found no PowerShell at ${ps} (the Windows backend drives Windows Defender Firewall through it); no firewall rules are written, publishing goes on. Allow edgeport in the firewall yourself, or pass --firewall none to silence this`,
      );
    m =
      platform === "win32"
        ? exists(ps)
          ? "windows"
          : "none"
        : platform === "darwin"
          ? "macos"
          : platform === "linux" && root && exists(NFT)
            ? "nftables"
            : "none";
    o.log?.debug(`firewall: --firewall auto chose ${m}`);
  }
  if (m === "nftables") {
    let cgroup = null;
    try {
      cgroup = cgroupScopeFrom(readFileSync("/proc/self/cgroup", "utf8"), readFileSync("/proc/self/mountinfo", "utf8"));
    } catch {}
    if (!cgroup)
      o.log?.info(
        "firewall: edgeport is not in a cgroup v2 of its own; rules are scoped to address and port only (run it as a systemd unit to scope them to its sockets)",
      );
    else o.log?.debug(`firewall: rules scoped to cgroup v2 ${cgroup.path} (level ${cgroup.level})`);
    return createNftablesBackend({ run: o.run, cgroup });
  }
  if (m === "windows") return createWindowsBackend({ run: o.run, program: o.program, env: o.env ?? {} });
  if (m === "macos") return createMacosBackend({ run: o.run, program: o.program });
  return { name: "none", list: async () => [], apply: async () => [] };
}

const liveness: LivenessDeps = {
  kill: (pid) => void process.kill(pid, 0),
  read: (path) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return null;
    }
  },
};

/** Whether the process that wrote a rule still runs: its pid, and its start time when the tag has one. */
export const isAlive = (pid: number, start?: number): boolean => isAliveWith(liveness, pid, start);

/** One backend transaction for what differs between the rules wanted and those applied (false: nothing did); `applied` follows it. */
async function applyDiff(
  backend: Backend,
  owner: Owner,
  applied: Map<string, OwnedRule[]>,
  rules: ReturnType<typeof planRules>,
  log: ConsolaInstance,
): Promise<boolean> {
  const { add, remove } = diffRules(rules, new Set(applied.keys()));
  if (!add.length && !remove.length) return false;
  const removing = remove.flatMap((id) => applied.get(id) ?? []);
  const t0 = performance.now();
  const added = await backend.apply(add, removing, owner, rules);
  for (const id of remove) applied.delete(id);
  for (const r of add)
    applied.set(
      r.id,
      added.filter((a) => a.id === r.id),
    );
  const ms = Math.round(performance.now() - t0);
  const what = [
    add.length ? `allowed ${add.map((r) => r.id).join(", ")}` : "",
    remove.length ? `removed ${remove.join(", ")}` : "",
  ].filter(Boolean);
  log.info(`firewall (${backend.name}): ${what.join("; ")} in ${ms} ms`);
  return true;
}

export function createFirewall(o: {
  backend: Backend;
  log: ConsolaInstance;
  /** this process; its start time goes into every rule's tag (read from /proc when not given) */
  pid: number;
  start?: number | null;
  instance?: string;
  retryMs?: number;
  alive?: (pid: number, start?: number) => boolean;
}): Firewall {
  const log = o.log;
  const backend = o.backend;
  const pid = o.pid;
  const instance = o.instance ?? crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16).padStart(8, "0");
  const alive = o.alive ?? isAlive;
  const start = o.start === undefined ? processStartTime(pid, liveness) : o.start;
  const owner: Owner = start === null ? { instance, pid } : { instance, pid, start };
  const applied = new Map<string, OwnedRule[]>();
  let wanted: readonly FirewallListener[] = [];
  let dirty = false;
  let working: Promise<void> | null = null;
  let retry: ReturnType<typeof setTimeout> | null = null;
  let closed = false;
  let lastError: string | null = null;

  async function round(): Promise<void> {
    while (dirty) {
      dirty = false;
      try {
        if (!(await applyDiff(backend, owner, applied, closed ? [] : planRules(wanted), log))) continue;
        if (lastError) log.info(`firewall (${backend.name}): working again`);
        lastError = null;
      } catch (e) {
        const msg = (e as Error).message;
        if (msg !== lastError)
          log.warn(
            `firewall (${backend.name}): ${msg}; publishing goes on, retrying in ${(o.retryMs ?? 5000) / 1000} s`,
          );
        lastError = msg;
        if (!closed && !retry) {
          retry = setTimeout(() => {
            retry = null;
            kick();
          }, o.retryMs ?? 5000);
          retry.unref?.();
        }
        return;
      }
    }
  }

  function kick(): void {
    dirty = true;
    if (working) return;
    working = round().finally(() => {
      working = null;
      if (dirty) kick();
    });
  }

  return {
    backend: backend.name,
    instance,
    sync(listeners) {
      wanted = [...listeners];
      if (backend.name !== "none") kick();
    },
    async settled() {
      while (working) await working;
    },
    async prune() {
      const stale = (await backend.list()).filter(
        (r) => r.pid > 0 && r.instance !== instance && (r.pid === pid || !alive(r.pid, r.start)),
      );
      if (stale.length) {
        await backend.apply([], stale, owner, []);
        log.info(
          `firewall (${backend.name}): removed ${stale.length} rule(s) left by dead instances: ${stale.map((r) => `${r.id} (pid ${r.pid}${r.start === undefined ? "" : ` started at tick ${r.start}`})`).join(", ")}`,
        );
      }
      return stale;
    },
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      retry = null;
      if (backend.name === "none") return;
      kick();
      while (working) await working;
      if (applied.size)
        log.warn(
          `firewall (${backend.name}): ${applied.size} rule(s) could not be removed; the next start prunes them`,
        );
    },
    applied: () => [...applied.keys()],
    lastError: () => lastError,
  };
}

export function parseFirewallMode(s: string): FirewallMode {
  if (!(FIREWALL_MODES as readonly string[]).includes(s))
    throw new EdgeportError("E_BAD_ARG", `--firewall: "${s}" is not one of ${FIREWALL_MODES.join(", ")}`);
  return s as FirewallMode;
}
