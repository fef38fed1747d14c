/**
 * Where a service's files go and which commands enable, disable and query it, per OS and scope
 * (pure: the environment comes in as values). `edgeport service` executes the plan.
 */
import { posix, win32 } from "node:path";
import { launchdLabel, launchdPlist } from "./launchd.ts";
import { systemdUnit } from "./systemd.ts";
import { DESCRIPTIONS, type ServiceSpec, serviceName } from "./types.ts";
import { windowsTaskXml } from "./windows-task.ts";

export interface ServiceFile {
  path: string;
  text: string;
  /** how the file is written: utf8, or utf16le with a BOM (Task Scheduler XML) */
  encoding: "utf8" | "utf16le";
}

export interface ServicePlan {
  spec: ServiceSpec;
  files: ServiceFile[];
  /** run after the files are written */
  enable: string[][];
  /** run before the files are removed (failures are reported, not fatal) */
  disable: string[][];
  status: string[];
}

export interface PlanInput {
  os: "linux" | "darwin" | "win32";
  scope: ServiceSpec["scope"];
  kind: ServiceSpec["kind"];
  exe: string;
  /** the config file (already resolved: --config, else defaultConfigPath) */
  config: string;
  /** the arguments after the executable (from the config file) */
  args: string[];
  env: Record<string, string | undefined>;
  uid: number;
  systemdVersion: number;
}

/** Where the config file is unless --config says otherwise. */
export function defaultConfigPath(
  os: PlanInput["os"],
  scope: ServiceSpec["scope"],
  kind: ServiceSpec["kind"],
  env: Record<string, string | undefined>,
): string {
  const file = kind === "run" ? "edgeport.toml" : "forwarder.toml";
  if (os === "win32")
    return win32.join((scope === "user" ? env.APPDATA : env.ProgramData) ?? "C:\\ProgramData", "edgeport", file);
  if (scope === "system") return posix.join("/etc/edgeport", file);
  return posix.join(env.XDG_CONFIG_HOME ?? posix.join(env.HOME ?? "/", ".config"), "edgeport", file);
}

function systemdPlan(spec: ServiceSpec, p: PlanInput): ServicePlan {
  const unit = `${serviceName(spec.kind)}.service`;
  const dir =
    spec.scope === "system"
      ? "/etc/systemd/system"
      : posix.join(p.env.XDG_CONFIG_HOME ?? posix.join(p.env.HOME ?? "/", ".config"), "systemd/user");
  const ctl = spec.scope === "system" ? ["systemctl"] : ["systemctl", "--user"];
  return {
    spec,
    files: [{ path: posix.join(dir, unit), text: systemdUnit(spec, p.systemdVersion), encoding: "utf8" }],
    enable: [
      [...ctl, "daemon-reload"],
      [...ctl, "enable", "--now", unit],
    ],
    disable: [
      [...ctl, "disable", "--now", unit],
      [...ctl, "daemon-reload"],
    ],
    status: [...ctl, "status", "--no-pager", unit],
  };
}

function launchdPlan(spec: ServiceSpec, p: PlanInput): ServicePlan {
  const label = launchdLabel(spec.kind);
  const user = spec.scope === "user";
  const home = p.env.HOME ?? "/";
  const path = user
    ? posix.join(home, "Library/LaunchAgents", `${label}.plist`)
    : `/Library/LaunchDaemons/${label}.plist`;
  const log = user ? posix.join(home, "Library/Logs/edgeport.log") : "/Library/Logs/edgeport.log";
  const domain = user ? `gui/${p.uid}` : "system";
  return {
    spec,
    files: [{ path, text: launchdPlist(spec, log), encoding: "utf8" }],
    enable: [["launchctl", "bootstrap", domain, path]],
    disable: [["launchctl", "bootout", `${domain}/${label}`]],
    status: ["launchctl", "print", `${domain}/${label}`],
  };
}

function windowsPlan(spec: ServiceSpec, p: PlanInput): ServicePlan {
  const name = serviceName(spec.kind);
  const path = win32.join(p.env.LOCALAPPDATA ?? "C:\\", "edgeport", `${name}.task.xml`);
  const userId = `${p.env.USERDOMAIN ?? "."}\\${p.env.USERNAME ?? "user"}`;
  return {
    spec,
    files: [{ path, text: windowsTaskXml(spec, userId), encoding: "utf16le" }],
    enable: [
      ["schtasks", "/Create", "/TN", name, "/XML", path, "/F"],
      ["schtasks", "/Run", "/TN", name],
    ],
    disable: [
      ["schtasks", "/End", "/TN", name],
      ["schtasks", "/Delete", "/TN", name, "/F"],
    ],
    status: ["schtasks", "/Query", "/TN", name, "/V", "/FO", "LIST"],
  };
}

export function servicePlan(p: PlanInput): ServicePlan {
  const spec: ServiceSpec = {
    kind: p.kind,
    scope: p.scope,
    exe: p.exe,
    args: p.args,
    description: DESCRIPTIONS[p.kind],
  };
  if (p.os === "darwin") return launchdPlan(spec, p);
  if (p.os === "win32") return windowsPlan(spec, p);
  return systemdPlan(spec, p);
}
