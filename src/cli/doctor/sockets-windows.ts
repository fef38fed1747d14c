/**
 * Windows: Get-NetTCPConnection / Get-NetUDPEndpoint name who holds a port (through PowerShell,
 * JSON out), and `netsh int ipv4 show excludedportrange` the ranges Windows keeps for itself
 * (Hyper-V, WSL2 and Docker Desktop reserve whole blocks; a bind there fails with EACCES).
 */
import { z } from "zod";
import type { Runner } from "../../firewall/types.ts";
import type { HostSockets, Proto, SocketOwner } from "./sockets.ts";

const Row = z.object({
  LocalAddress: z.string(),
  LocalPort: z.number(),
  OwningProcess: z.number(),
  ProcessName: z.string().nullish(),
});

/** PowerShell for the listeners of one port, as JSON. */
export function listenersScript(proto: Proto, port: number): string {
  const get =
    proto === "tcp"
      ? `Get-NetTCPConnection -State Listen -LocalPort ${port} -ErrorAction SilentlyContinue`
      : `Get-NetUDPEndpoint -LocalPort ${port} -ErrorAction SilentlyContinue`;
  return `$ProgressPreference = 'SilentlyContinue'; @(${get} | ForEach-Object { [pscustomobject]@{ LocalAddress = $_.LocalAddress; LocalPort = [int]$_.LocalPort; OwningProcess = [int]$_.OwningProcess; ProcessName = (Get-Process -Id $_.OwningProcess -ErrorAction SilentlyContinue).ProcessName } }) | ConvertTo-Json -Compress`;
}

/** ConvertTo-Json gives nothing, one object, or an array. */
export function parseListenersJson(stdout: string): SocketOwner[] {
  const text = stdout.trim();
  if (!text) return [];
  const data: unknown = JSON.parse(text);
  const rows = z.array(Row).parse(Array.isArray(data) ? data : [data]);
  return rows.map((r) => ({
    pid: r.OwningProcess,
    program: r.ProcessName ?? "?",
    address: r.LocalAddress,
    port: r.LocalPort,
  }));
}

export interface PortRange {
  start: number;
  end: number;
  /** marked * by netsh: an administrator's exclusion, not one a service made */
  administered: boolean;
}

/** Parses `netsh int ipv4 show excludedportrange protocol=tcp`. */
export function parseExcludedRanges(stdout: string): PortRange[] {
  const out: PortRange[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^\s*(\d{1,5})\s+(\d{1,5})\s*(\*)?\s*$/.exec(line);
    if (m) out.push({ start: Number(m[1]), end: Number(m[2]), administered: !!m[3] });
  }
  return out;
}

export const excludedRange = (ranges: readonly PortRange[], port: number): PortRange | undefined =>
  ranges.find((r) => port >= r.start && port <= r.end);

export function windowsSockets(
  run: Runner,
  powershell: string,
): HostSockets & {
  excludedRanges(proto: Proto): Promise<PortRange[]>;
} {
  return {
    async listeners(proto, port) {
      const r = await run([powershell, "-NoProfile", "-NonInteractive", "-Command", listenersScript(proto, port)], {
        mutates: false,
      });
      return r.code === 0 ? parseListenersJson(r.stdout) : [];
    },
    // Windows' AF_UNIX sockets: the OS does not say who holds one
    unixOwner: async () => null,
    async excludedRanges(proto) {
      const r = await run(["netsh", "int", "ipv4", "show", "excludedportrange", `protocol=${proto}`], {
        mutates: false,
      });
      return r.code === 0 ? parseExcludedRanges(r.stdout) : [];
    },
  };
}
