/**
 * `edgeport doctor`: gathers the facts (engine, daemon, pipe, host sockets, firewall), each
 * through an injected door, and turns them into checklist lines with the pure checks.
 */
import type { BindingPolicy } from "../../events/wanted.ts";
import type { FirewallMode } from "../../firewall/index.ts";
import type { DaemonState } from "../../publisher/daemon.ts";
import type { TransportUrl } from "../../relay/transports/url.ts";
import type { PortRules } from "../../shared/config.ts";
import type { EngineChoice } from "../engine-discovery.ts";
import type { CheckResult } from "./check.ts";
import { type DaemonFacts, daemonChecks, type LogEvent } from "./daemon.ts";
import { engineChecks } from "./engine.ts";
import { probeEngine, runningContainers } from "./engine-probe.ts";
import { type FirewallDeps, firewallCheck } from "./firewall.ts";
import { pipeChecks } from "./pipe.ts";
import { probePipe } from "./pipe-probe.ts";
import { type PortFacts, portChecks, portsToExplain } from "./ports.ts";
import type { HostSockets, SocketOwner } from "./sockets.ts";
import type { PortRange } from "./sockets-windows.ts";
import { vmListenerChecks } from "./vm-listeners.ts";

export { type CheckResult, failed, formatResults } from "./check.ts";

export interface DoctorInput {
  engine: EngineChoice;
  /** the relay URL and secret to try a session with; without it the daemon's view of its pipe is all */
  relay?: { url: TransportUrl; secret?: Uint8Array };
  api: { url: string; unixPath?: string; state(): Promise<DaemonState & { events?: readonly LogEvent[] }> };
  /** the binding policy to assume when no daemon says its own */
  binding: BindingPolicy;
  rules: PortRules;
  firewall: Omit<FirewallDeps, "platform" | "uid" | "env"> & { mode: FirewallMode };
  sockets: HostSockets;
  /** Windows: the excluded port ranges (absent elsewhere) */
  excludedRanges?: (proto: "tcp" | "udp") => Promise<PortRange[]>;
  platform: string;
  uid: number;
  env: Record<string, string | undefined>;
  version: string;
  timeoutMs: number;
  /** `edgeport why PORT`: only what explains this host port */
  onlyPort?: number;
}

async function daemonFacts(i: DoctorInput): Promise<DaemonFacts> {
  const owner = i.api.unixPath ? await i.sockets.unixOwner(i.api.unixPath).catch(() => null) : null;
  try {
    return { api: i.api.url, state: await i.api.state(), owner, engineUrl: i.engine.url };
  } catch (e) {
    return { api: i.api.url, error: (e as Error).message, owner, engineUrl: i.engine.url };
  }
}

async function portFacts(i: DoctorInput, d: DaemonFacts, containers: PortFacts["containers"]): Promise<PortFacts> {
  const base = {
    containers,
    binding: d.state?.binding ?? i.binding,
    rules: i.rules,
    daemon: d.state ? { ports: d.state.ports, engineConnected: d.state.engine?.connected ?? false } : null,
    platform: i.platform,
    uid: i.uid,
  };
  const owners = new Map<string, SocketOwner[]>();
  for (const w of portsToExplain(base)) {
    if (w.proto === "unix" || (i.onlyPort !== undefined && w.hostPort !== i.onlyPort)) continue;
    owners.set(w.key, await i.sockets.listeners(w.proto, w.hostPort).catch(() => []));
  }
  const excluded = i.excludedRanges
    ? { tcp: await i.excludedRanges("tcp").catch(() => []), udp: await i.excludedRanges("udp").catch(() => []) }
    : undefined;
  return { ...base, owners, ...(excluded ? { excluded } : {}) };
}

export async function runDoctor(i: DoctorInput): Promise<CheckResult[]> {
  const why = i.onlyPort !== undefined;
  const [engine, daemon, pipe] = await Promise.all([
    probeEngine(i.engine, { timeoutMs: i.timeoutMs, ...(i.relay ? { relay: i.relay } : {}) }),
    daemonFacts(i),
    i.relay && !why
      ? probePipe(i.relay.url, { secret: i.relay.secret, timeoutMs: i.timeoutMs, version: i.version })
      : null,
  ]);
  const containers = engine.engine ? await runningContainers(engine.engine).catch(() => null) : null;
  engine.close(); // a vm:/// engine's own pipe
  const ports = [...portChecks(await portFacts(i, daemon, containers)), ...vmListenerChecks(daemon.state, i.onlyPort)];
  if (why) return [...engineChecks(engine.facts).slice(0, 1), ...daemonChecks(daemon), ...ports];
  const fw = await firewallCheck({ ...i.firewall, platform: i.platform, uid: i.uid, env: i.env });
  return [
    ...engineChecks(engine.facts),
    ...daemonChecks(daemon),
    ...(pipe ? pipeChecks(pipe, i.version) : []),
    fw,
    ...ports,
  ];
}
