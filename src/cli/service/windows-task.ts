/**
 * A Task Scheduler task for edgeport on Windows (pure): started at the user's logon, restarted on
 * failure, no time limit. Not a Windows service: the service control manager kills a service
 * program that does not answer its start handshake (StartServiceCtrlDispatcher) within 30 s, and
 * a Bun executable cannot make that call.
 */
import { type ServiceSpec, xmlEscape } from "./types.ts";

/** One argument quoted for CommandLineToArgvW (backslashes double only before a quote). */
export function windowsQuote(arg: string): string {
  if (arg !== "" && !/[\s"]/.test(arg)) return arg;
  return `"${arg.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, "$1$1")}"`;
}

export const TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task";

/** Task XML (schema 1.2), for `schtasks /Create /XML`; userId is DOMAIN\user. */
export function windowsTaskXml(spec: ServiceSpec, userId: string): string {
  const name = spec.kind === "run" ? "edgeport" : "edgeport-forwarder";
  return [
    '<?xml version="1.0" encoding="UTF-16"?>',
    `<Task version="1.2" xmlns="${TASK_NS}">`,
    "  <RegistrationInfo>",
    `    <Description>${xmlEscape(spec.description)}</Description>`,
    `    <URI>\\${name}</URI>`,
    "  </RegistrationInfo>",
    "  <Triggers>",
    `    <LogonTrigger><Enabled>true</Enabled><UserId>${xmlEscape(userId)}</UserId></LogonTrigger>`,
    "  </Triggers>",
    "  <Principals>",
    '    <Principal id="Author">',
    `      <UserId>${xmlEscape(userId)}</UserId>`,
    "      <LogonType>InteractiveToken</LogonType>",
    // the system scope writes Windows firewall rules, which needs an elevated token
    `      <RunLevel>${spec.scope === "system" ? "HighestAvailable" : "LeastPrivilege"}</RunLevel>`,
    "    </Principal>",
    "  </Principals>",
    "  <Settings>",
    "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>",
    "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>",
    "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>",
    "    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>",
    "    <RestartOnFailure><Interval>PT1M</Interval><Count>999</Count></RestartOnFailure>",
    "    <StartWhenAvailable>true</StartWhenAvailable>",
    "    <Enabled>true</Enabled>",
    "  </Settings>",
    '  <Actions Context="Author">',
    "    <Exec>",
    `      <Command>${xmlEscape(spec.exe)}</Command>`,
    `      <Arguments>${xmlEscape(spec.args.map(windowsQuote).join(" "))}</Arguments>`,
    "    </Exec>",
    "  </Actions>",
    "</Task>",
    "",
  ].join("\r\n");
}
