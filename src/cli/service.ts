/**
 * `edgeport service install|uninstall|status`: run edgeport under the OS's service manager, with
 * the arguments from the current config file. systemd on Linux (system, or --user), launchd on
 * macOS (LaunchDaemon, or LaunchAgent with --user), a Task Scheduler task at logon on Windows.
 * --dry-run prints the files and commands; --root DIR writes under DIR and runs no commands.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, posix, resolve, win32 } from "node:path";
import { defineCommand } from "citty";
import { loadConfig } from "../shared/config-file.ts";
import { EdgeportError } from "../shared/errors.ts";
import type { ProcessContext } from "../shared/process-context.ts";
import { contextOf } from "./context.ts";
import { forwarderArgs, parseForwarderConfig } from "./service/forwarder-config.ts";
import { defaultConfigPath, type PlanInput, type ServiceFile, type ServicePlan, servicePlan } from "./service/plan.ts";
import { BUILD_TARGET } from "./version.ts";

const args = {
  user: {
    type: "boolean",
    description: "The user's own service (systemd --user, a LaunchAgent) instead of the system's, started at login",
  },
  forwarder: {
    type: "boolean",
    description: "The VM side (edgeport forwarder) instead of the host side (edgeport run)",
  },
  config: {
    type: "string",
    description:
      "The config file the service runs with (default /etc/edgeport/edgeport.toml, --user ~/.config/edgeport/edgeport.toml; forwarder.toml with --forwarder)",
    valueHint: "PATH",
  },
  "dry-run": { type: "boolean", description: "Print the files and commands instead of writing and running them" },
  root: {
    type: "string",
    description:
      "Work inside this directory instead of / (the config file too); only systemctl --root runs (packaging an image)",
    valueHint: "DIR",
  },
  os: {
    type: "string",
    description: "The OS to write the service for: linux, darwin, windows (default: this one; for --dry-run)",
    valueHint: "OS",
  },
  exe: {
    type: "string",
    description: "The edgeport executable the service runs (default: this one)",
    valueHint: "PATH",
  },
} as const;

type Args = { [K in keyof typeof args]?: (typeof args)[K]["type"] extends "boolean" ? boolean : string };

function osOf(a: Args, ctx: ProcessContext): PlanInput["os"] {
  const os = a.os ?? ctx.platform;
  if (os === "linux" || os === "darwin") return os;
  if (os === "windows" || os === "win32") return "win32";
  throw new EdgeportError("E_BAD_ARG", `--os: "${os}" is not one of linux, darwin, windows`);
}

const rooted = (a: Args, path: string) =>
  a.root ? join(resolve(a.root), path.replace(/^[A-Za-z]:/, "").replace(/\\/g, "/")) : path;

function systemdVersion(os: PlanInput["os"]): number {
  if (os !== "linux") return 0;
  const r = Bun.spawnSync(["systemctl", "--version"], { stdout: "pipe", stderr: "ignore" });
  return Number(/systemd (\d+)/.exec(r.stdout?.toString() ?? "")?.[1] ?? 0);
}

/** A path for the service's OS, made absolute from here when it is relative. */
const absolute = (os: PlanInput["os"], p: string) => ((os === "win32" ? win32 : posix).isAbsolute(p) ? p : resolve(p));

/** The plan for these flags; with `withArgs`, the service's arguments are read from the config file. */
function planOf(a: Args, withArgs: boolean, ctx: ProcessContext): ServicePlan {
  const os = osOf(a, ctx);
  const kind = a.forwarder ? "forwarder" : "run";
  if (kind === "forwarder" && os !== "linux")
    throw new EdgeportError("E_UNSUPPORTED", "the forwarder runs inside the Linux VM: install its service there");
  const scope = a.user ? "user" : "system";
  const config = a.config ? absolute(os, a.config) : defaultConfigPath(os, scope, kind, ctx.env);
  if (withArgs && !a.exe && BUILD_TARGET === null)
    throw new EdgeportError(
      "E_BAD_ARG",
      "run from source: say which edgeport executable the service runs (--exe PATH)",
    );
  const exe = a.exe ? absolute(os, a.exe) : ctx.execPath;
  let serviceArgs: string[] = [];
  if (withArgs) serviceArgs = kind === "run" ? runArgs(rooted(a, config), config) : fwdArgs(rooted(a, config));
  return servicePlan({
    os,
    scope,
    kind,
    exe,
    config,
    args: serviceArgs,
    env: ctx.env,
    uid: ctx.uid,
    systemdVersion: withArgs ? systemdVersion(os) : 0,
  });
}

function runArgs(readFrom: string, config: string): string[] {
  const c = loadConfig(readFrom);
  if (!c.relay)
    throw new EdgeportError("E_BAD_ARG", `${readFrom} has no "relay": the service needs to know where the pipe is`);
  return ["run", "--config", config];
}

function fwdArgs(readFrom: string): string[] {
  let text: string;
  try {
    text = readFileSync(readFrom, "utf8");
  } catch (e) {
    throw new EdgeportError(
      "E_BAD_ARG",
      `cannot read ${readFrom} (${(e as NodeJS.ErrnoException).code}): the forwarder's config file, with at least listen = "URL"`,
    );
  }
  return forwarderArgs(parseForwarderConfig(text, readFrom));
}

function runAll(cmds: string[][], fatal: boolean): void {
  for (const cmd of cmds) {
    const r = Bun.spawnSync(cmd, { stdout: "inherit", stderr: "pipe" });
    if (r.exitCode === 0) continue;
    const msg = `${cmd.join(" ")} failed (exit ${r.exitCode}): ${r.stderr?.toString().trim()}`;
    if (fatal) throw new EdgeportError("E_PERMISSION", msg);
    console.error(`warning: ${msg}`);
  }
}

function writeFile(f: ServiceFile, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  const data = f.encoding === "utf16le" ? Buffer.from(`\ufeff${f.text}`, "utf16le") : f.text;
  writeFileSync(to, data, { mode: 0o644 });
}

/**
 * The service manager commands to run. Under --root only a system unit's enable/disable, which
 * `systemctl --root` does offline (the [Install] symlinks); the rest is printed, not run.
 */
function commands(a: Args, plan: ServicePlan, which: "enable" | "disable", ctx: ProcessContext): string[][] {
  if (!a.root) return plan[which];
  for (const c of plan[which]) console.log(`not run (--root): ${c.join(" ")}`);
  if (osOf(a, ctx) !== "linux" || plan.spec.scope !== "system") return [];
  return [["systemctl", `--root=${resolve(a.root)}`, which, basename(plan.files[0]!.path)]];
}

const install = defineCommand({
  meta: { name: "install", description: "Write the service for the current config file, enable and start it" },
  args,
  run({ args: a, data }) {
    const ctx = contextOf(data);
    const plan = planOf(a, true, ctx);
    if (a["dry-run"]) {
      for (const f of plan.files) console.log(`# ${f.path}\n${f.text.replace(/\r\n/g, "\n")}`);
      for (const c of plan.enable) console.log(`# then: ${c.join(" ")}`);
      return;
    }
    for (const f of plan.files) writeFile(f, rooted(a, f.path));
    for (const f of plan.files) console.log(`wrote ${rooted(a, f.path)}`);
    runAll(commands(a, plan, "enable", ctx), true);
    console.log(
      `installed the ${plan.spec.scope} service ${plan.spec.kind === "run" ? "edgeport" : "edgeport-forwarder"}; check it with: edgeport service status${a.user ? " --user" : ""}${a.forwarder ? " --forwarder" : ""}`,
    );
  },
});

const uninstall = defineCommand({
  meta: { name: "uninstall", description: "Stop and disable the service and remove its files" },
  args,
  run({ args: a, data }) {
    const ctx = contextOf(data);
    const plan = planOf(a, false, ctx);
    const present = plan.files.filter((f) => existsSync(rooted(a, f.path)));
    if (a["dry-run"]) {
      for (const c of plan.disable) console.log(`# would run: ${c.join(" ")}`);
      for (const f of present) console.log(`# would remove: ${f.path}`);
      return;
    }
    if (present.length) runAll(commands(a, plan, "disable", ctx), false);
    for (const f of present) rmSync(rooted(a, f.path));
    console.log(
      present.length
        ? `removed ${present.map((f) => rooted(a, f.path)).join(", ")}`
        : `no service installed (${plan.files.map((f) => rooted(a, f.path)).join(", ")} absent)`,
    );
  },
});

const status = defineCommand({
  meta: { name: "status", description: "Whether the service is installed, and what the service manager says of it" },
  args,
  run({ args: a, data }) {
    const plan = planOf(a, false, contextOf(data));
    for (const f of plan.files)
      console.log(`${rooted(a, f.path)}: ${existsSync(rooted(a, f.path)) ? "installed" : "not installed"}`);
    if (!a.root) runAll([plan.status], false);
  },
});

export default defineCommand({
  meta: { name: "service", description: "Run edgeport as a service: systemd, launchd, or a Windows logon task" },
  subCommands: { install, uninstall, status },
});
