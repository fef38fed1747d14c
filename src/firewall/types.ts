/** What the firewall backends share: an injected command runner and one shape of owned rule. */
import type { RuleSpec } from "./plan.ts";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; `mutates` is false for commands that only read (dry runs still run those). */
export type Runner = (argv: string[], o?: { stdin?: string; mutates?: boolean }) => Promise<CommandResult>;

/** A rule some edgeport instance wrote, as found on the system. */
/** Who writes a rule: the instance id, its pid and the pid's start time where the OS tells it. */
export interface Owner {
  instance: string;
  pid: number;
  /** /proc/PID/stat field 22; absent where there is no /proc, and in tags of older versions */
  start?: number;
}

export interface OwnedRule extends Owner {
  /** the rule id (see planRules) */
  id: string;
  /** where it is, for humans: `inet filter input handle 7`, a Windows rule name, ... */
  where: string;
  /** backend data needed to remove exactly this rule */
  ref: unknown;
}

export interface Backend {
  readonly name: "nftables" | "windows" | "macos" | "none";
  /** every rule any edgeport instance owns */
  list(): Promise<OwnedRule[]>;
  /**
   * One batch: removes `remove`, adds `add` (tagged with the owner), in one transaction
   * where the system has them. Returns the rules added. `after` is the whole wanted set.
   */
  apply(add: RuleSpec[], remove: OwnedRule[], owner: Owner, after: RuleSpec[]): Promise<OwnedRule[]>;
}

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: CommandResult,
  ) {
    super(
      `${argv[0]!.split(/[\\/]/).pop()} ${argv.slice(1, 3).join(" ")}... exited ${result.code}: ${(result.stderr || result.stdout).trim().split("\n").slice(0, 3).join(" / ") || "no output"}`,
    );
  }
}

export async function runOk(run: Runner, argv: string[], o?: { stdin?: string; mutates?: boolean }): Promise<string> {
  const r = await run(argv, o);
  if (r.code !== 0) throw new CommandError(argv, r);
  return r.stdout;
}
