/**
 * launchd property lists for edgeport on macOS (pure): a LaunchDaemon (root, at boot) or a
 * LaunchAgent (--user, at login). launchd restarts it when it exits with an error, no sooner than
 * ThrottleInterval seconds after the last start. launchd has no pre/post commands: `edgeport run`
 * itself prunes the firewall rules of dead instances when it starts.
 */
import { type ServiceSpec, xmlEscape } from "./types.ts";

export const launchdLabel = (kind: ServiceSpec["kind"]): string => `dev.edgeport.${kind}`;

export function launchdPlist(spec: ServiceSpec, logPath: string): string {
  const str = (s: string) => `<string>${xmlEscape(s)}</string>`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    "<dict>",
    `  <key>Label</key>${str(launchdLabel(spec.kind))}`,
    "  <key>ProgramArguments</key>",
    "  <array>",
    ...[spec.exe, ...spec.args].map((a) => `    ${str(a)}`),
    "  </array>",
    "  <key>RunAtLoad</key><true/>",
    "  <key>KeepAlive</key>",
    "  <dict><key>SuccessfulExit</key><false/></dict>",
    "  <key>ThrottleInterval</key><integer>10</integer>",
    "  <key>ProcessType</key><string>Adaptive</string>",
    `  <key>StandardOutPath</key>${str(logPath)}`,
    `  <key>StandardErrorPath</key>${str(logPath)}`,
    "</dict>",
    "</plist>",
    "",
  ].join("\n");
}
