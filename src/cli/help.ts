/**
 * `--help`, instead of citty's (which pads every row to the longest description): each option on
 * its own line, its description wrapped below it to the width given (the terminal's; 80 when not
 * a terminal), defaults shown, a few examples per command, colour only when asked. Pure: the
 * caller says the width and whether to colour.
 */
import type { ArgDef, CommandDef } from "citty";

const EXAMPLES: Record<string, string[]> = {
  edgeport: [
    "edgeport forwarder --listen tcp://0.0.0.0:7000 --engine unix:///docker.sock",
    "edgeport run --relay tcp://192.168.64.2:7000 --engine tcp://192.168.64.2:2375",
    "edgeport publish 8080:web:80",
    "edgeport ls",
  ],
  run: [
    "edgeport run --relay unix:///vm/fwd.sock --engine unix:///vm/docker.sock",
    "edgeport run --relay vsock://3:7777 --engine vm:///var/run/docker.sock",
    "edgeport run --config ~/.config/edgeport/edgeport.toml",
    "edgeport run --relay tcp://192.168.64.2:7000 --engine none",
  ],
  forwarder: [
    "edgeport forwarder --listen unix:///run/fwd.sock --allow 172.17.0.0/16",
    "edgeport forwarder --listen tcp://0.0.0.0:7000 --engine unix:///docker.sock",
    "edgeport forwarder --listen vsock://any:7777 --engine unix:///docker.sock",
    "edgeport forwarder --config /etc/edgeport/forwarder.toml",
  ],
  publish: [
    "edgeport publish 8080:web:80        # through the daemon, to container web",
    "edgeport publish 0.0.0.0:5353:172.17.0.3:53/udp 8443:172.17.0.2:443",
    "edgeport publish --relay unix:///run/fwd.sock 127.0.0.1:8080:172.17.0.2:80",
  ],
  unpublish: ["edgeport unpublish 3f2a9c1b", "edgeport unpublish 8080:web:80", "edgeport unpublish $(edgeport ls -q)"],
  ls: ["edgeport ls", "edgeport ls --filter container=web", "edgeport ls --format json"],
  status: ["edgeport status", "edgeport status --json", "edgeport status || echo 'pipe or engine down'"],
  firewall: ["edgeport firewall ls", "edgeport firewall prune --dry-run"],
  version: ["edgeport version", "edgeport version --json"],
};
EXAMPLES["firewall ls"] = ["edgeport firewall ls", "edgeport firewall ls --json"];
EXAMPLES["firewall prune"] = ["edgeport firewall prune --dry-run", "edgeport firewall prune --all"];

/** Words of `text` in lines of at most `width` characters (a longer word gets its own line). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let cur = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (cur && cur.length + 1 + word.length > width) {
      lines.push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) lines.push(cur);
  return lines;
}

type Style = (s: string) => string;

function optionLines(name: string, a: ArgDef, width: number, bold: Style): string[] {
  const aliases = ([] as string[]).concat((a as { alias?: string | string[] }).alias ?? []);
  const hint = a.type === "boolean" ? "" : ` ${(a as { valueHint?: string }).valueHint ?? "VALUE"}`;
  const names = [...aliases.map((x) => (x.length === 1 ? `-${x}` : `--${x}`)), `--${name}`].join(", ");
  const def = (a as { default?: unknown }).default;
  const extra = [
    (a as { required?: boolean }).required ? "required" : "",
    def !== undefined && def !== false && def !== "" ? `default: ${def}` : "",
  ].filter(Boolean);
  const desc = `${a.description ?? ""}${extra.length ? ` (${extra.join("; ")})` : ""}`;
  return [`  ${bold(names)}${hint}`, ...wrap(desc, width - 6).map((l) => `      ${l}`)];
}

export interface HelpOptions {
  width: number;
  color: boolean;
}

/** The help of `cmd` (`parent` is the command it belongs to, for its full name). */
export async function renderHelp(cmd: CommandDef, parent: CommandDef | undefined, o: HelpOptions): Promise<string> {
  const bold: Style = o.color ? (s) => `\x1b[1m${s}\x1b[22m` : (s) => s;
  const meta = (cmd.meta ?? {}) as { name?: string; description?: string };
  const parentName = (parent?.meta as { name?: string } | undefined)?.name;
  const full = [parentName && parentName !== "edgeport" ? parentName : "", meta.name ?? ""].filter(Boolean).join(" ");
  const command = full === "edgeport" ? "edgeport" : `edgeport ${full}`;
  const args = Object.entries((cmd.args ?? {}) as Record<string, ArgDef>);
  const positionals = args.filter(([, a]) => a.type === "positional");
  const options = args.filter(([, a]) => a.type !== "positional");
  const subs = Object.keys((cmd.subCommands ?? {}) as object);
  const usage = [
    command,
    subs.length ? "COMMAND" : "",
    options.length ? "[OPTIONS]" : "",
    ...positionals.map(([n, a]) => {
      const v = (a as { valueHint?: string }).valueHint ?? n.toUpperCase();
      return (a as { required?: boolean }).required ? v : `[${v}]`;
    }),
  ].filter(Boolean);
  const out = [...wrap(`${command}: ${meta.description ?? ""}`, o.width), "", `${bold("USAGE")}  ${usage.join(" ")}`];
  if (positionals.length) {
    out.push("", bold("ARGUMENTS"));
    for (const [n, a] of positionals) {
      const v = (a as { valueHint?: string }).valueHint ?? n.toUpperCase();
      const req = (a as { required?: boolean }).required ? " (required)" : "";
      out.push(`  ${bold(v)}${req}`, ...wrap(a.description ?? "", o.width - 6).map((l) => `      ${l}`));
    }
  }
  if (subs.length) {
    out.push("", bold("COMMANDS"));
    const pad = Math.max(...subs.map((s) => s.length)) + 2;
    const defs = cmd.subCommands as Record<string, CommandDef | (() => Promise<CommandDef>)>;
    for (const s of subs) {
      const sub = typeof defs[s] === "function" ? await (defs[s] as () => Promise<CommandDef>)() : defs[s];
      const d = ((sub?.meta ?? {}) as { description?: string }).description ?? "";
      const lines = wrap(d, Math.max(20, o.width - pad - 2));
      out.push(`  ${bold(s.padEnd(pad))}${lines[0] ?? ""}`, ...lines.slice(1).map((l) => `${" ".repeat(pad + 2)}${l}`));
    }
  }
  if (options.length) {
    out.push("", bold("OPTIONS"));
    for (const [n, a] of options) out.push(...optionLines(n, a, o.width, bold));
    out.push(...optionLines("help", { type: "boolean", alias: "h", description: "This help" }, o.width, bold));
  }
  const examples = EXAMPLES[full] ?? [];
  if (examples.length) out.push("", bold("EXAMPLES"), ...examples.map((e) => `  ${e}`));
  if (subs.length) out.push("", `See ${command} COMMAND --help.`);
  return `${out.join("\n")}\n`;
}
