/**
 * Windows Defender Firewall through PowerShell's NetSecurity module, never netsh's localised text:
 * one inbound allow rule per rule id, scoped to the running executable (`-Program`), with a stable
 * name (`edgeport-<instance>-<id>`), the group `edgeport`, and the owner tag as its description.
 * Delete-then-add makes each add idempotent; one powershell.exe run carries a whole batch (a
 * 1,000-port range is one ranged rule anyway). powershell.exe is called by its absolute System32 path.
 */
import { z } from "zod";
import { ownerTag, parseOwnerTag, type RuleSpec } from "./plan.ts";
import { type Backend, CommandError, type OwnedRule, type Owner, type Runner, runOk } from "./types.ts";

export const GROUP = "edgeport";

export const powershellPath = (env: Readonly<Record<string, string | undefined>>): string =>
  `${(env.SystemRoot ?? env.SYSTEMROOT ?? "C:\\Windows").replace(/\\+$/, "")}\\System32\\WindowsPowerShell\\v1.0\\powershell.exe`;

/** A PowerShell single-quoted string literal: nothing inside is interpreted, ' is doubled. */
export const psQuote = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** `edgeport-<instance>-udp-fd00__1-53`: IPv6 colons become "_" so the parts stay readable */
export function ruleName(instance: string, id: string): string {
  const proto = id.slice(0, id.indexOf(":"));
  const ports = id.slice(id.lastIndexOf(":") + 1);
  const addr = id
    .slice(proto.length + 1, id.length - ports.length - 1)
    .replace(/[[\]]/g, "")
    .replace(/:/g, "_");
  return `edgeport-${instance}-${proto}-${addr}-${ports}`;
}

/** The PowerShell script of one batch. Pure. */
export function windowsScript(add: RuleSpec[], removeNames: string[], owner: Owner, program: string): string {
  const lines = ["$ErrorActionPreference = 'Stop'", "$ProgressPreference = 'SilentlyContinue'"];
  for (const name of removeNames)
    lines.push(`Remove-NetFirewallRule -Name ${psQuote(name)} -ErrorAction SilentlyContinue`);
  for (const r of add) {
    const name = ruleName(owner.instance, r.id);
    const addr = r.any
      ? r.family === 4
        ? "0.0.0.0-255.255.255.255"
        : "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
      : r.address;
    const ports = r.portLo === r.portHi ? `${r.portLo}` : `${r.portLo}-${r.portHi}`;
    lines.push(`Remove-NetFirewallRule -Name ${psQuote(name)} -ErrorAction SilentlyContinue`);
    lines.push(
      [
        "New-NetFirewallRule",
        `-Name ${psQuote(name)}`,
        `-DisplayName ${psQuote(`edgeport ${r.proto.toUpperCase()} ${r.id.slice(4)}`)}`,
        `-Group ${psQuote(GROUP)}`,
        `-Description ${psQuote(ownerTag(owner.instance, owner.pid, r.id, owner.start))}`,
        "-Direction Inbound -Action Allow -Profile Any",
        `-Protocol ${r.proto.toUpperCase()}`,
        `-LocalAddress ${psQuote(addr)}`,
        `-LocalPort ${psQuote(ports)}`,
        `-Program ${psQuote(program)}`,
        "| Out-Null",
      ].join(" "),
    );
  }
  return lines.join("; ");
}

export const LIST_SCRIPT = `$ProgressPreference = 'SilentlyContinue'; @(Get-NetFirewallRule -Group ${psQuote(GROUP)} -ErrorAction SilentlyContinue | Select-Object Name,Description) | ConvertTo-Json -Compress`;

const Listed = z.union([
  z.array(z.object({ Name: z.string(), Description: z.string().nullable().optional() })),
  z.object({ Name: z.string(), Description: z.string().nullable().optional() }),
]);

export function parseWindowsList(stdout: string): OwnedRule[] {
  const text = stdout.trim();
  if (!text) return [];
  const parsed = Listed.parse(JSON.parse(text));
  const found: OwnedRule[] = [];
  for (const r of Array.isArray(parsed) ? parsed : [parsed]) {
    const tag = parseOwnerTag(r.Description ?? "");
    if (tag) found.push({ ...tag, where: r.Name, ref: r.Name });
  }
  return found;
}

export function createWindowsBackend(o: {
  run: Runner;
  program: string;
  /** the process's environment (SystemRoot locates powershell.exe) */
  env: Readonly<Record<string, string | undefined>>;
}): Backend {
  const ps = powershellPath(o.env);
  const argv = (script: string) => [
    ps,
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-Command",
    script,
  ];
  return {
    name: "windows",
    async list() {
      return parseWindowsList(await runOk(o.run, argv(LIST_SCRIPT)));
    },
    async apply(add, remove, owner) {
      if (!add.length && !remove.length) return [];
      const a = argv(
        windowsScript(
          add,
          remove.map((r) => r.ref as string),
          owner,
          o.program,
        ),
      );
      const r = await o.run(a, { mutates: true });
      if (r.code !== 0) throw new CommandError(a, r);
      return add.map((s) => ({
        ...owner,
        id: s.id,
        where: ruleName(owner.instance, s.id),
        ref: ruleName(owner.instance, s.id),
      }));
    },
  };
}
