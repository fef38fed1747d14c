/**
 * One line per port the engine publishes: does edgeport have it, and if not, why: a rule, the
 * binding policy, a conflict, a bind error with the process that holds the port, a Windows
 * excluded range, macOS's rule for ports below 1024. Pure: what the OS says comes in as facts.
 */
import type { ContainerInspect } from "../../events/schemas.ts";
import { type BindingPolicy, type WantedPort, wantedPorts } from "../../events/wanted.ts";
import type { PortState } from "../../publisher/daemon.ts";
import { isLoopback, isUnspecified, parseIp } from "../../shared/address.ts";
import type { PortRules } from "../../shared/config.ts";
import { type CheckResult, fail, pass, skip, warn } from "./check.ts";
import { blocks, describeOwner, type SocketOwner } from "./sockets.ts";
import { excludedRange, type PortRange } from "./sockets-windows.ts";

export interface PortFacts {
  /** the engine's running containers; null when the engine did not answer (the daemon's rows are all there is) */
  containers: readonly ContainerInspect[] | null;
  binding: BindingPolicy;
  rules: PortRules | null;
  /** the daemon's rows and whether it follows the engine; null when no daemon answers */
  daemon: { ports: readonly PortState[]; engineConnected: boolean } | null;
  /** who holds a host port, by port key (only asked for ports edgeport does not have) */
  owners: ReadonlyMap<string, readonly SocketOwner[]>;
  platform: string;
  uid: number;
  excluded?: { tcp: readonly PortRange[]; udp: readonly PortRange[] };
}

export interface Wanted {
  want: WantedPort;
  container: ContainerInspect;
  /** the binding policy's notes about this container */
  notes: string[];
}

export function wantedAll(containers: readonly ContainerInspect[] | null, binding: BindingPolicy): Wanted[] {
  return (containers ?? []).flatMap((c) => {
    const w = wantedPorts(c, binding);
    return w.ports.map((want) => ({ want, container: c, notes: w.warnings }));
  });
}

const unbound = (rows: readonly PortState[] | undefined, w: WantedPort) =>
  !rows?.some((r) => r.key === w.key && r.status === "published" && r.source.containerId === w.containerId);

/** The ports worth asking the OS about: those edgeport does not hold. */
export const portsToExplain = (f: Pick<PortFacts, "containers" | "binding" | "daemon">): WantedPort[] =>
  wantedAll(f.containers, f.binding)
    .map((x) => x.want)
    .filter((w) => unbound(f.daemon?.ports, w));

/** Why the host will not let this port be bound, as far as the OS says. */
function hostReasons(w: WantedPort, f: PortFacts): { why: string[]; fix: string[] } {
  const why: string[] = [];
  const fix: string[] = [];
  const holders = (f.owners.get(w.key) ?? []).filter((o) => blocks(o, w.hostIp));
  if (holders.length) {
    why.push(`held by ${holders.map(describeOwner).join("; ")}`);
    const p = holders[0]!;
    fix.push(
      `stop ${p.pid !== undefined ? `pid ${p.pid} (${p.program ?? "?"})` : "the process that holds it"}, or publish the container on another host port`,
    );
  }
  const range =
    f.platform === "win32" && w.proto !== "unix" ? excludedRange(f.excluded?.[w.proto] ?? [], w.hostPort) : undefined;
  if (range) {
    why.push(
      `in Windows' excluded port range ${range.start}-${range.end}${range.administered ? " (administered)" : ""} (netsh int ipv4 show excludedportrange protocol=${w.proto})`,
    );
    fix.push(
      "use a host port outside the range, or as administrator run net stop winnat && net start winnat, which hands out new ranges",
    );
  }
  const ip = parseIp(w.hostIp);
  if (f.platform === "darwin" && f.uid !== 0 && w.hostPort < 1024 && !isUnspecified(ip)) {
    why.push(`macOS lets a program that is not root bind a port below 1024 only on 0.0.0.0 or ::, not on ${w.hostIp}`);
    fix.push(
      "run edgeport as root (a LaunchDaemon), publish on 0.0.0.0 with --binding open, or use a port of 1024 or more",
    );
  }
  return { why, fix };
}

const FIXES: Record<string, string> = {
  E_ADDR_NOT_AVAILABLE:
    "the address is not one of this host's: publish the container on 127.0.0.1 or 0.0.0.0, or run with --binding local-only",
  E_PERMISSION:
    "ports below 1024 need root (or, on Linux, a lower net.ipv4.ip_unprivileged_port_start); or publish on a port of 1024 or more",
};

/** "on loopback only" when the engine asked for every address and the policy kept it local. */
function policyNote(x: Wanted, binding: BindingPolicy): string[] {
  const { want, container } = x;
  const asked = container.NetworkSettings.Ports?.[`${want.targetPort}/${want.proto}`] ?? [];
  const everywhere = asked.some(
    (b) => Number(b.HostPort) === want.hostPort && (!b.HostIp || isUnspecified(parseIp(b.HostIp))),
  );
  const notes = x.notes.filter((n) => n.includes(`:${want.hostPort};`));
  if (everywhere && binding !== "open" && isLoopback(parseIp(want.hostIp)))
    notes.push(`loopback only (--binding ${binding}; --binding open publishes on every address)`);
  return notes;
}

function portLine(x: Wanted, f: PortFacts): CheckResult {
  const { want: w } = x;
  const id = w.key;
  const who = `container ${w.containerName} -> ${w.targetIp.includes(":") ? `[${w.targetIp}]` : w.targetIp}:${w.targetPort}`;
  const extra = { port: w.hostPort };
  const labels = x.container.Config?.Labels ?? {};
  const ignored = f.rules?.ignored(w.hostPort, w.containerName, labels);
  if (ignored) return skip(id, `${who}: not published: ${ignored}`, extra);
  const reserved = f.rules?.reserved(w.hostPort);
  if (reserved)
    return warn(
      id,
      `${who}: not published: ${reserved}`,
      'take the port out of "reserved" in the config to publish it',
      extra,
    );
  const rows = f.daemon?.ports.filter((r) => r.key === w.key) ?? [];
  const mine = rows.find((r) => r.source.containerId === w.containerId);
  if (mine?.status === "published") {
    const notes = policyNote(x, f.binding);
    return pass(id, `${who}: published${notes.length ? `; ${notes.join("; ")}` : ""}`, extra);
  }
  if (mine?.status === "conflict" || (!mine && rows.some((r) => r.status === "published")))
    return fail(
      id,
      `${who}: not published: ${mine?.error ?? `already published for ${rows[0]!.source.kind === "container" ? `container ${rows[0]!.container}` : rows[0]!.source.kind}`}`,
      "two publishers want one host port: give one of them another host port (docker run -p OTHER:...)",
      { ...extra, code: "E_CONFLICT" },
    );
  const host = hostReasons(w, f);
  const because = host.why.length ? `; ${host.why.join("; ")}` : "";
  if (mine?.status === "failed")
    return fail(
      id,
      `${who}: not published: ${mine.error ?? "bind failed"}${because}`,
      host.fix[0] ?? FIXES[mine.code ?? ""] ?? "see the daemon's log",
      {
        ...extra,
        code: (mine.code as CheckResult["code"]) ?? "E_PORT_IN_USE",
      },
    );
  if (!f.daemon)
    return fail(
      id,
      `${who}: not published: no edgeport daemon runs${because}`,
      "start it: edgeport run --relay URL (or a service: edgeport service install)",
      {
        ...extra,
        code: "E_DIAL",
      },
    );
  if (!f.daemon.engineConnected)
    return fail(
      id,
      `${who}: not published: the daemon does not follow the engine now${because}`,
      "see the engine line above; the daemon catches up once the engine answers",
      {
        ...extra,
        code: "E_DIAL",
      },
    );
  return fail(
    id,
    `${who}: not published yet: the daemon has not seen it${because}`,
    "it is published at the next resync; if it stays, check that the daemon follows the same engine (edgeport status)",
    extra,
  );
}

/** Lines for ports the daemon has that no container of this engine explains (ad-hoc, docker-proxy; all when the engine did not answer). */
function otherLines(f: PortFacts, seen: Set<string>): CheckResult[] {
  return (f.daemon?.ports ?? [])
    .filter((r) => (r.source.kind !== "container" || f.containers === null) && !seen.has(r.key))
    .map((r) => {
      const who = `${r.source.kind === "container" ? `container ${r.container}` : `${r.source.kind} ${r.id}`} -> ${r.target}`;
      const port = Number(r.host.split(":").pop());
      return r.status === "published"
        ? pass(r.key, `${who}: published`, { port })
        : fail(r.key, `${who}: not published: ${r.error ?? r.status}`, FIXES[r.code ?? ""] ?? "see the daemon's log", {
            port,
          });
    });
}

export function portChecks(f: PortFacts): CheckResult[] {
  const all = wantedAll(f.containers, f.binding);
  const lines = all.map((x) => portLine(x, f));
  return [...lines, ...otherLines(f, new Set(all.map((x) => x.want.key)))];
}
