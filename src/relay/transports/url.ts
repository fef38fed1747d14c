/** Pipe transport URLs, for the host (connect) and the forwarder (listen). Pure. */
import { parseIp } from "../../shared/address.ts";
import { EdgeportError } from "../../shared/errors.ts";

export type TransportUrl =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "exec"; command: string; args: string[] }
  | { kind: "stdio" }
  | { kind: "npipe"; path: string };

export type TransportRole = "connect" | "listen";

const FORMS: Record<TransportRole, string> = {
  connect: "unix:///path, tcp://IP:PORT, npipe:////./pipe/NAME, exec:COMMAND ARGS",
  listen: "unix:///path, tcp://IP:PORT, npipe:////./pipe/NAME, stdio:",
};

/** Splits a command line on whitespace, honouring simple single and double quotes. */
export function splitCommand(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: string | null = null;
  let has = false;
  for (const ch of s) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = "";
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote) throw new Error(`unclosed ${quote}`);
  if (has || cur) out.push(cur);
  return out;
}

export function parseTransportUrl(input: string, role: TransportRole): TransportUrl {
  const fail = (why: string): never => {
    throw new EdgeportError(
      "E_BAD_URL",
      `bad ${role === "connect" ? "relay" : "listen"} URL "${input}": ${why}; accepted forms: ${FORMS[role]}`,
    );
  };
  const s = input.trim();
  if (s.startsWith("unix://")) {
    const path = s.slice("unix://".length);
    if (!path.startsWith("/")) fail("the path must be absolute (unix:///path)");
    return { kind: "unix", path };
  }
  if (s.startsWith("tcp://")) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(s);
    if (!m) fail("write tcp://IP:PORT");
    const host =
      m![1]!.toLowerCase() === "localhost"
        ? "127.0.0.1"
        : (() => {
            try {
              return parseIp(m![1]!).text;
            } catch (e) {
              return fail((e as Error).message);
            }
          })();
    const port = Number(m![2]);
    if (port > 65535 || (port === 0 && role === "connect")) fail(`port ${port} is out of range`);
    return { kind: "tcp", host, port };
  }
  if (s.startsWith("exec:")) {
    if (role !== "connect") fail("exec: is for the host side (--relay)");
    let argv: string[] = [];
    try {
      argv = splitCommand(s.slice("exec:".length));
    } catch (e) {
      fail((e as Error).message);
    }
    if (argv.length === 0) fail("no command after exec:");
    return { kind: "exec", command: argv[0]!, args: argv.slice(1) };
  }
  if (s === "stdio:" || s === "stdio://") {
    if (role !== "listen") fail("stdio: is for the forwarder side (--listen)");
    return { kind: "stdio" };
  }
  if (s.startsWith("npipe:")) {
    const m = /^npipe:\/\/\/\/\.\/pipe\/([^/\\]+)$/.exec(s);
    if (!m) fail("write npipe:////./pipe/NAME");
    return { kind: "npipe", path: `\\\\.\\pipe\\${m![1]}` };
  }
  return fail("unknown scheme");
}

export function formatTransportUrl(u: TransportUrl): string {
  switch (u.kind) {
    case "unix":
      return `unix://${u.path}`;
    case "tcp":
      return `tcp://${u.host.includes(":") ? `[${u.host}]` : u.host}:${u.port}`;
    case "exec":
      return `exec:${[u.command, ...u.args].map((a) => (/\s/.test(a) || a === "" ? `"${a}"` : a)).join(" ")}`;
    case "stdio":
      return "stdio:";
    case "npipe":
      return `npipe:////./pipe/${u.path.slice("\\\\.\\pipe\\".length)}`;
  }
}
