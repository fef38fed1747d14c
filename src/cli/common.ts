/** Arguments and helpers shared by the commands. */
import type { ArgsDef } from "citty";
import { EDGEPORT_WINDOW_MAX, MAX_WINDOW, MIN_WINDOW } from "../relay/mux/constants.ts";
import { parseDuration } from "../shared/duration.ts";
import { EdgeportError } from "../shared/errors.ts";
import { configureLog, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevelName } from "../shared/log.ts";
import type { ProcessContext } from "../shared/process-context.ts";
import { readSecretFile } from "../shared/secret-file.ts";
import { cpuQuota, NO_ACTIVITY, startSpinner } from "../shared/spin.ts";

export const VERSION = "0.1.0";

/**
 * Exit codes: 0 done; 1 something failed (a spec of several, an unknown id, the daemon); 2 bad
 * usage; 3 the daemon runs but its pipe (or engine) is down: ports listen, clients would wait and
 * be reset. A command that runs to its end but must not exit 0 raises `outcome.exitCode`.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, down: 3 } as const;
export const outcome = { exitCode: 0 as number };
export const exitWith = (code: number): void => {
  if (outcome.exitCode === 0 || (code !== 0 && code < outcome.exitCode)) outcome.exitCode = code;
};

/** Every --json output: one JSON document, indented by two spaces. */
export const printJson = (v: unknown): void => console.log(JSON.stringify(v, null, 2));

export const logArgs = {
  "log-level": {
    type: "string",
    description: `Log level: ${LOG_LEVELS.join(", ")}`,
    default: "info",
    valueHint: "LEVEL",
  },
  "log-format": {
    type: "string",
    description: "Log format: text or json (one JSON object a line)",
    default: "text",
    valueHint: "FORMAT",
  },
} as const satisfies ArgsDef;

export const pipeArgs = {
  "token-file": {
    type: "string",
    description: "File holding the pipe secret; both ends must use the same one",
    valueHint: "PATH",
  },
  window: {
    type: "string",
    description:
      "Per-channel receive window offered to an edgeport peer at first, in bytes (vpnkit peers always get 64 KiB)",
    default: "1048576",
    valueHint: "BYTES",
  },
  "window-max": {
    type: "string",
    description:
      "What a fast channel's window may grow to, in bytes, when the window and not the destination limits it; equal to --window: no growth",
    default: "8388608",
    valueHint: "BYTES",
  },
  keepalive: {
    type: "string",
    description: "Ping an edgeport peer after this much silence (0 disables)",
    default: "5s",
    valueHint: "DURATION",
  },
  "dead-after": {
    type: "string",
    description: "Declare the pipe dead after this much silence from an edgeport peer",
    default: "15s",
    valueHint: "DURATION",
  },
  spin: {
    type: "string",
    description:
      "Linux, off by default: for this long after each burst of traffic a lowest-priority thread keeps a CPU busy, so that waking the relay needs no trip through a hypervisor that halts idle vCPUs. For a VM short of CPU (it kept throughput and connection rate up under steal; on a quiet machine it made the slowest round trips slower). Costs CPU while traffic flows, up to one core. E.g. 1ms; 0 = off",
    default: "0",
    valueHint: "DURATION",
  },
} as const satisfies ArgsDef;

export const firewallArgs = {
  firewall: {
    type: "string",
    description:
      "Host firewall rules for non-loopback listeners: auto (per OS; Linux needs root and nft), nftables, windows, macos, none",
    default: "auto",
    valueHint: "MODE",
  },
  "firewall-dry-run": {
    type: "boolean",
    description: "Print the firewall commands that would change something instead of running them",
  },
} as const satisfies ArgsDef;

export const udpArgs = {
  "udp-idle": {
    type: "string",
    description: "A UDP flow (one client address and port) ends after this long without a datagram either way",
    default: "120s",
    valueHint: "DURATION",
  },
  "udp-max-flows": {
    type: "string",
    description: "UDP flows per published port; past it the least recently used flow is ended",
    default: "4096",
    valueHint: "N",
  },
} as const satisfies ArgsDef;

export function udpSettings(args: { "udp-idle"?: string; "udp-max-flows"?: string }): {
  idleMs: number;
  maxFlows: number;
} {
  const idleMs = parseDuration(args["udp-idle"] ?? "120s", "--udp-idle");
  if (idleMs < 100) throw new EdgeportError("E_BAD_ARG", `--udp-idle: ${idleMs} ms is too short (100 ms at least)`);
  const raw = args["udp-max-flows"] ?? "4096";
  const maxFlows = Number(raw);
  if (!/^\d+$/.test(raw) || maxFlows < 1 || maxFlows > 1_000_000)
    throw new EdgeportError("E_BAD_ARG", `--udp-max-flows: "${raw}" must be a whole number from 1 to 1000000`);
  return { idleMs, maxFlows };
}

export function applyLogArgs(args: { "log-level"?: string; "log-format"?: string }): void {
  const level = args["log-level"] ?? "info";
  const format = args["log-format"] ?? "text";
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new EdgeportError("E_BAD_ARG", `--log-level: "${level}" is not one of ${LOG_LEVELS.join(", ")}`);
  if (!(LOG_FORMATS as readonly string[]).includes(format))
    throw new EdgeportError("E_BAD_ARG", `--log-format: "${format}" is not one of ${LOG_FORMATS.join(", ")}`);
  configureLog(level as LogLevelName, format as LogFormat);
}

export interface PipeSettings {
  secret?: Uint8Array;
  window: number;
  windowMax: number;
  keepaliveMs: number;
  deadAfterMs: number;
  /** --spin: 0 = off */
  spinMs: number;
}

export function pipeSettings(
  args: {
    "token-file"?: string;
    window?: string;
    "window-max"?: string;
    keepalive?: string;
    "dead-after"?: string;
    spin?: string;
  },
  who: Pick<ProcessContext, "uid" | "platform">,
): PipeSettings {
  const platform = who.platform;
  let secret: Uint8Array | undefined;
  const file = args["token-file"];
  if (file) {
    const token = readSecretFile("--token-file", file, who);
    if (token.length < 16)
      throw new EdgeportError(
        "E_BAD_ARG",
        `--token-file: ${file} holds ${token.length} characters; a pipe secret needs at least 16`,
      );
    secret = new TextEncoder().encode(token);
  }
  const window = Number(args.window ?? "1048576");
  if (!Number.isInteger(window) || window < MIN_WINDOW || window > MAX_WINDOW) {
    throw new EdgeportError(
      "E_BAD_ARG",
      `--window: "${args.window}" must be a whole number of bytes from ${MIN_WINDOW} to ${MAX_WINDOW}`,
    );
  }
  const windowMax = Number(args["window-max"] ?? String(EDGEPORT_WINDOW_MAX));
  if (!Number.isInteger(windowMax) || windowMax < MIN_WINDOW || windowMax > MAX_WINDOW) {
    throw new EdgeportError(
      "E_BAD_ARG",
      `--window-max: "${args["window-max"]}" must be a whole number of bytes from ${MIN_WINDOW} to ${MAX_WINDOW}`,
    );
  }
  if (windowMax < window)
    throw new EdgeportError(
      "E_BAD_ARG",
      `--window-max (${windowMax}) is smaller than --window (${window}); a window only grows`,
    );
  const keepaliveMs = parseDuration(args.keepalive ?? "5s", "--keepalive");
  const deadAfterMs = parseDuration(args["dead-after"] ?? "15s", "--dead-after");
  if (keepaliveMs > 0 && deadAfterMs <= keepaliveMs)
    throw new EdgeportError(
      "E_BAD_ARG",
      `--dead-after (${deadAfterMs} ms) must be longer than --keepalive (${keepaliveMs} ms)`,
    );
  const spinMs = parseDuration(args.spin ?? "0", "--spin");
  if (spinMs > 100)
    throw new EdgeportError("E_BAD_ARG", `--spin: ${spinMs} ms is too long (100 ms at most; 1ms is plenty)`);
  if (spinMs > 0 && platform !== "linux")
    throw new EdgeportError(
      "E_BAD_ARG",
      "--spin is for Linux only (it needs SCHED_IDLE, the lowest scheduling priority)",
    );
  return { secret, window, windowMax, keepaliveMs, deadAfterMs, spinMs };
}

/**
 * Starts --spin's thread when asked for; says so, or why not. Returns the activity hook to inject
 * into the relay (the transports and endpoints call it on traffic); a no-op when not spinning.
 */
export function startSpin(settings: PipeSettings, log: { info(m: string): void; warn(m: string): void }): () => void {
  if (settings.spinMs <= 0) return NO_ACTIVITY;
  const quota = cpuQuota();
  if (quota) {
    log.warn(`--spin: not spinning: this process runs under a CPU quota (${quota}), which spinning would spend`);
    return NO_ACTIVITY;
  }
  const spinner = startSpinner(settings.spinMs);
  spinner?.ready.then((why) =>
    why === null
      ? log.info(
          `--spin ${settings.spinMs}ms: a lowest-priority thread keeps a CPU busy for ${settings.spinMs} ms after each burst of traffic`,
        )
      : log.warn(`--spin: not spinning: the thread could not run at the lowest priority (${why})`),
  );
  return spinner?.poke ?? NO_ACTIVITY;
}

/** Every value of a repeatable flag (`--allow a --allow b`, `--allow=a`); citty keeps only the last. */
export function repeated(rawArgs: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (a === `--${name}` && i + 1 < rawArgs.length) out.push(rawArgs[++i]!);
    else if (a.startsWith(`--${name}=`)) out.push(a.slice(name.length + 3));
  }
  return out;
}

/** Rejects flags the command does not know (citty would ignore a typo silently). */
export function checkFlags(rawArgs: string[], def: ArgsDef): void {
  const known = new Set<string>(["help", "h"]);
  for (const [k, v] of Object.entries(def)) {
    known.add(k);
    for (const alias of ([] as string[]).concat((v as { alias?: string | string[] }).alias ?? [])) known.add(alias);
  }
  for (const a of rawArgs) {
    if (a === "--") break;
    const m = /^--?([^=]+)/.exec(a);
    if (!m || /^-\d/.test(a) || a === "-") continue;
    const name = m[1]!.replace(/^no-/, "");
    if (!known.has(name)) {
      const near = closest(
        name,
        [...known].filter((k) => k.length > 1),
      );
      throw new EdgeportError(
        "E_BAD_ARG",
        `unknown option ${a.split("=")[0]}${near ? ` (did you mean --${near}?)` : " (see --help)"}`,
      );
    }
  }
}

/** Edit distance (insert, delete, replace, swap two neighbours). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  return d[a.length]![b.length]!;
}

/** The known name nearest to a mistyped one, when it is near enough to be the one meant. */
export function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const dd = distance(name, k);
    if (dd < bestD) [best, bestD] = [k, dd];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** Resolves when the signal aborts. */
export const untilAborted = (signal: AbortSignal): Promise<void> =>
  signal.aborted ? Promise.resolve() : new Promise((r) => signal.addEventListener("abort", () => r(), { once: true }));
