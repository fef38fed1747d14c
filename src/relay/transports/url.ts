/** Pipe transport URLs, for the host (connect) and the forwarder (listen). Pure. */
import { parseIp } from "../../shared/address.ts";
import { EdgeportError } from "../../shared/errors.ts";

export type TransportUrl =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "exec"; command: string; args: string[] }
  | { kind: "stdio" }
  | { kind: "npipe"; path: string }
  | { kind: "vsock"; cid: number; port: number }
  | { kind: "fd"; fd: number };

export type TransportRole = "connect" | "listen";

const FORMS: Record<TransportRole, string> = {
  connect: "unix:///path, tcp://IP:PORT, npipe:////./pipe/NAME, vsock://CID:PORT, fd://N, exec:COMMAND ARGS",
  listen: "unix:///path, tcp://IP:PORT, npipe:////./pipe/NAME, vsock://any:PORT, fd://N, stdio:",
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
  if (s.startsWith("vsock:")) return parseVsock(s, role, fail);
  if (s.startsWith("fd:")) {
    const m = /^fd:\/\/(\d{1,7})$/.exec(s);
    if (!m) fail("write fd://N (an inherited socket's file descriptor)");
    const fd = Number(m![1]);
    if (fd < 3) fail(`fd ${fd} is stdin, stdout or stderr; use stdio: for those`);
    return { kind: "fd", fd };
  }
  return fail("unknown scheme");
}

const U32 = 0xffffffff;

function parseVsock(s: string, role: TransportRole, fail: (why: string) => never): TransportUrl {
  const m = /^vsock:\/\/([^:/]+):(\d{1,10})\/?$/.exec(s);
  if (!m) fail("write vsock://CID:PORT (vsock://any:PORT to listen)");
  const cidText = m![1]!.toLowerCase();
  const port = Number(m![2]);
  if (port > U32 - 1) fail(`port ${port} is out of range (0-4294967294)`);
  if (cidText === "any" || cidText === "-1") {
    if (role === "connect") fail("connect to a CID, not any: 2 is the host, 3 and up are VMs");
    return { kind: "vsock", cid: U32, port };
  }
  if (!/^\d{1,10}$/.test(cidText) || Number(cidText) >= U32) fail(`CID "${m![1]}" is not a number below 4294967295`);
  return { kind: "vsock", cid: Number(cidText), port };
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
    case "vsock":
      return `vsock://${u.cid === U32 ? "any" : u.cid}:${u.port}`;
    case "fd":
      return `fd://${u.fd}`;
  }
}
