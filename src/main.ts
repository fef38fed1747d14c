#!/usr/bin/env bun
/**
 * The only file that touches the process: argv, environment, platform, uid, signals, exit codes.
 * It reads them once into a ProcessContext and hands that to the command that runs.
 */
import type { ArgsDef, CommandDef } from "citty";
import { runCommand } from "citty";
import { checkFlags, outcome } from "./cli/common.ts";
import { stop } from "./cli/context.ts";
import { looksLikeDockerd, runDockerProxy, USAGE } from "./cli/docker-proxy.ts";
import { renderHelp } from "./cli/help.ts";
import { main } from "./cli/index.ts";
import { logUnhandled } from "./cli/unhandled.ts";
import { isEdgeportError } from "./shared/errors.ts";
import { log, logFormat } from "./shared/log.ts";
import type { ProcessContext } from "./shared/process-context.ts";

const USAGE_ERRORS = new Set(["E_BAD_SPEC", "E_BAD_URL", "E_BAD_ARG", "E_BAD_ADDRESS", "E_BAD_CIDR"]);

/** The command the leading words name (`firewall ls`), and the flags that follow them. */
async function resolveSub(rawArgs: string[]): Promise<{ cmd: CommandDef; parent?: CommandDef; rest: string[] }> {
  let cmd: CommandDef = main;
  let parent: CommandDef | undefined;
  let i = 0;
  while (i < rawArgs.length && !rawArgs[i]!.startsWith("-")) {
    const subs = cmd.subCommands as Record<string, CommandDef | (() => Promise<CommandDef>)> | undefined;
    const sub = subs?.[rawArgs[i]!];
    if (!sub) break;
    parent = cmd;
    cmd = typeof sub === "function" ? await sub() : sub;
    i++;
  }
  return { cmd, parent, rest: rawArgs.slice(i) };
}

const context: ProcessContext = {
  env: process.env,
  platform: process.platform,
  arch: process.arch,
  uid: process.getuid?.() ?? 0,
  pid: process.pid,
  execPath: process.execPath,
  signal: stop.signal,
};

/** Help on stdout: wrapped to the terminal (80 columns in a pipe); colour on a TTY or with FORCE_COLOR, never with NO_COLOR. */
async function showUsage(cmd: CommandDef, parent?: CommandDef): Promise<void> {
  const tty = !!process.stdout.isTTY;
  const force = process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== "0";
  const color = process.env.NO_COLOR === undefined && (tty || force);
  const width = tty && process.stdout.columns ? Math.max(40, process.stdout.columns) : 80;
  process.stdout.write(await renderHelp(cmd, parent, { width, color }));
}

/**
 * A runtime error ends the command: `edgeport: <message>` on stderr, or with --log-format json one
 * JSON line carrying the code. Whatever --log-level says: silence never hides why it stopped.
 */
function fatal(message: string, code: string): number {
  if (logFormat() === "json")
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "fatal", msg: message, code })}\n`);
  else process.stderr.write(`edgeport: ${message}\n`);
  return 1;
}

async function run(): Promise<number> {
  const rawArgs = process.argv.slice(2);
  logUnhandled(process, log);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (stop.signal.aborted) process.exit(130);
      stop.abort();
    });
  }
  // dockerd's userland proxy: Go-style flags, and edgeport itself may be the userland-proxy-path
  if (rawArgs[0] === "docker-proxy" || looksLikeDockerd(rawArgs)) {
    const argv = rawArgs[0] === "docker-proxy" ? rawArgs.slice(1) : rawArgs;
    if (argv.includes("--help") || argv.includes("-h") || argv.includes("-help")) {
      console.log(USAGE);
      return 0;
    }
    return runDockerProxy(argv, context.env);
  }
  if (rawArgs.includes("--help") || rawArgs.includes("-h")) {
    const { cmd, parent } = await resolveSub(rawArgs);
    await showUsage(cmd, parent);
    return 0;
  }
  if (rawArgs.length === 0) {
    await showUsage(main);
    return 2;
  }
  if (rawArgs[0] === "--version") {
    console.log((main.meta as { version: string }).version);
    return 0;
  }
  const name = rawArgs[0]!;
  if (!(name in (main.subCommands as object))) {
    console.error(
      `edgeport: unknown command "${name}"; commands: ${Object.keys(main.subCommands as object).join(", ")} (see edgeport --help)`,
    );
    return 2;
  }
  try {
    const { cmd, parent, rest } = await resolveSub(rawArgs);
    if (cmd.subCommands && !cmd.run) {
      const words = Object.keys(cmd.subCommands as object).join(", ");
      console.error(
        `edgeport ${name}: ${rest[0] && !rest[0].startsWith("-") ? `unknown subcommand "${rest[0]}"` : "a subcommand is needed"}; one of ${words}`,
      );
      await showUsage(cmd, parent);
      return 2;
    }
    checkFlags(rest, (cmd.args ?? {}) as ArgsDef);
    await runCommand(cmd, { rawArgs: rest, data: context });
    return outcome.exitCode;
  } catch (e) {
    if (isEdgeportError(e)) {
      if (USAGE_ERRORS.has(e.code)) {
        console.error(`edgeport ${name}: ${e.message}`);
        return 2;
      }
      return fatal(e.message, e.code);
    }
    const msg = (e as Error)?.message ?? String(e);
    if (/Missing required (positional )?argument/i.test(msg)) {
      console.error(`edgeport ${name}: ${msg} (see edgeport ${name} --help)`);
      return 2;
    }
    return fatal(msg, "E_INTERNAL");
  }
}

process.exit(await run());
