/**
 * systemd units for edgeport (pure). The host side's unit prunes the firewall rules of dead edgeport
 * instances before it starts and after it stops, so a crash never leaves rules behind (a leading
 * "-": a host without a firewall backend still starts). The forwarder writes no firewall rules.
 */
import type { ServiceSpec } from "./types.ts";

/** systemd's RestartSteps= and RestartMaxDelaySec= (a growing restart delay) came in v254. */
export const SYSTEMD_BACKOFF_VERSION = 254;

/** One argument of an Exec line, quoted the way systemd reads it (%, $ and \ escaped). */
export function systemdQuote(arg: string): string {
  const escaped = arg.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  if (/^[A-Za-z0-9_@+=:,./-]+$/.test(arg) && !arg.includes("%")) return escaped;
  return `"${escaped.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

const execLine = (exe: string, args: string[]) => [exe, ...args].map(systemdQuote).join(" ");

export function systemdUnit(spec: ServiceSpec, systemdVersion: number): string {
  const system = spec.scope === "system";
  const after = [
    ...(system ? ["network-online.target"] : []),
    ...(spec.kind === "forwarder" ? ["docker.service"] : []),
  ];
  const backoff =
    systemdVersion >= SYSTEMD_BACKOFF_VERSION
      ? ["RestartSec=1s", "RestartSteps=6", "RestartMaxDelaySec=60s"]
      : ["RestartSec=5s"];
  const prune = spec.kind === "run" ? `-${execLine(spec.exe, ["firewall", "prune"])}` : null;
  return [
    "[Unit]",
    `Description=${spec.description}`,
    // the user manager has no network-online.target: a user unit starts with the user's session
    ...(system ? ["Wants=network-online.target"] : []),
    ...(after.length ? [`After=${after.join(" ")}`] : []),
    // never give up restarting: the VM may be down for longer than any burst limit
    "StartLimitIntervalSec=0",
    "",
    "[Service]",
    "Type=exec",
    ...(prune ? [`ExecStartPre=${prune}`] : []),
    `ExecStart=${execLine(spec.exe, spec.args)}`,
    ...(prune ? [`ExecStopPost=${prune}`] : []),
    "Restart=on-failure",
    ...backoff,
    "KillSignal=SIGTERM",
    "TimeoutStopSec=15s",
    "",
    "[Install]",
    `WantedBy=${system ? "multi-user.target" : "default.target"}`,
    "",
  ].join("\n");
}
