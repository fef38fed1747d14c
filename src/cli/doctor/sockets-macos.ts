/** macOS: lsof names who listens on a port or a unix socket (`-F pcn`: one field a line). */
import type { Runner } from "../../firewall/types.ts";
import type { HostSockets, SocketOwner } from "./sockets.ts";

const LSOF = "/usr/sbin/lsof";

/** Parses `lsof -nP -F pcn` output: p<pid>, c<command>, n<address:port or path>; other fields ignored. */
export function parseLsof(text: string): { pid: number; program: string; name: string }[] {
  const out: { pid: number; program: string; name: string }[] = [];
  let pid = 0;
  let program = "?";
  for (const line of text.split("\n")) {
    const v = line.slice(1);
    if (line[0] === "p") {
      pid = Number(v);
      program = "?";
    } else if (line[0] === "c") program = v;
    else if (line[0] === "n" && pid) out.push({ pid, program, name: v });
  }
  return out;
}

/** "127.0.0.1:80", "[::1]:80", "*:80" -> address and port ("*" is the unspecified address). */
export function splitLsofName(name: string): { address: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(name.split("->")[0]!);
  if (!m) return null;
  const host = m[1] ?? m[2]!;
  return { address: host === "*" ? "0.0.0.0" : host, port: Number(m[3]) };
}

export function macosSockets(run: Runner, lsof = LSOF): HostSockets {
  return {
    async listeners(proto, port) {
      const args = proto === "tcp" ? [`-iTCP:${port}`, "-sTCP:LISTEN"] : [`-iUDP:${port}`];
      const r = await run([lsof, "-nP", ...args, "-Fpcn"], { mutates: false });
      const out: SocketOwner[] = [];
      for (const e of parseLsof(r.stdout)) {
        const at = splitLsofName(e.name);
        if (at && at.port === port) out.push({ pid: e.pid, program: e.program, ...at });
      }
      return out;
    },
    async unixOwner(path) {
      const r = await run([lsof, "-nP", "-Fpcn", "--", path], { mutates: false });
      const first = parseLsof(r.stdout)[0];
      return first ? { pid: first.pid, program: first.program } : null;
    },
  };
}
