/**
 * Which host ports does a container want? A pure function of its inspect JSON and the binding
 * policy. Resolved host ports come from NetworkSettings.Ports (so `-p 80` and `-P` work), the
 * user's intent from HostConfig.PortBindings (HostIp "" means "not specified", unlike an explicit
 * 0.0.0.0), the target from the container's own addresses.
 */
import { formatHostPort, isLoopback, isUnspecified, parseIp } from "../shared/address.ts";
import type { ContainerInspect, PortBinding } from "./schemas.ts";

export const BINDING_POLICIES = ["open", "local-default", "local-only"] as const;
export type BindingPolicy = (typeof BINDING_POLICIES)[number];
/** unix: a socket forward (ad-hoc only): hostIp and targetIp are paths, the ports 0 */
export type Proto = "tcp" | "udp" | "unix";

export interface WantedPort {
  /** the one key of a published port: proto and host address */
  key: string;
  hostIp: string;
  hostPort: number;
  proto: Proto;
  targetIp: string;
  targetPort: number;
  containerId: string;
  containerName: string;
  /** TCP only: connections start with a PROXY protocol v2 header (label edgeport.proxy-protocol) */
  proxyProtocol?: boolean;
}

export interface Wanted {
  ports: WantedPort[];
  /** things the user should know (a binding narrowed by local-only, an unsupported protocol) */
  warnings: string[];
  /** the container runs but some of its ports or its address are not visible yet: inspect again */
  pending: boolean;
}

export const portKey = (proto: Proto, hostIp: string, hostPort: number): string =>
  proto === "unix" ? `unix:${hostIp}` : `${proto}:${formatHostPort(hostIp, hostPort)}`;

/** The container label that opts ports into the PROXY protocol v2 header. */
export const PROXY_PROTOCOL_LABEL = "edgeport.proxy-protocol";

/**
 * The label's value: "true", "all" or no value at all (`docker run -l edgeport.proxy-protocol`):
 * every TCP port of the container; "false": none; else a comma-separated list of container ports
 * ("80,443", "8080/tcp"). Returns a test for a container port, and what was wrong with the value
 * (nothing of a bad value is applied: a typo must not half-apply).
 */
export function proxyProtocolPorts(value: string | undefined): { has: (port: number) => boolean; problem?: string } {
  if (value === undefined) return { has: () => false };
  const v = value.trim().toLowerCase();
  if (v === "true" || v === "all" || v === "") return { has: () => true };
  if (v === "false") return { has: () => false };
  const ports = new Set<number>();
  for (const item of v.split(",").map((x) => x.trim())) {
    const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(item);
    const n = m ? Number(m[1]) : NaN;
    if (!m || n < 1 || n > 65535)
      return {
        has: () => false,
        problem: `label ${PROXY_PROTOCOL_LABEL}="${value}": "${item}" is not a container port (write "true", or ports like "80,443")`,
      };
    if (m[2] === "udp")
      return {
        has: () => false,
        problem: `label ${PROXY_PROTOCOL_LABEL}="${value}": "${item}": the PROXY protocol is for TCP only`,
      };
    ports.add(n);
  }
  return { has: (p) => ports.has(p) };
}

const LOOPBACKS = ["127.0.0.1", "::1"];
const ALL = ["0.0.0.0", "::"];

function canonical(ip: string | null | undefined): string | null {
  if (!ip) return null;
  try {
    return parseIp(ip).text;
  } catch {
    return null;
  }
}

/** The container's address to relay to: its first IPv4 address, else its first IPv6 address. */
export function targetAddress(c: ContainerInspect): string | null {
  const nets = Object.entries(c.NetworkSettings.Networks ?? {}).sort(([a], [b]) =>
    a === "bridge" ? -1 : b === "bridge" ? 1 : a.localeCompare(b),
  );
  for (const [, n] of nets) if (canonical(n?.IPAddress)) return canonical(n!.IPAddress)!;
  for (const [, n] of nets) if (canonical(n?.GlobalIPv6Address)) return canonical(n!.GlobalIPv6Address)!;
  return null;
}

/** Host addresses for one resolved binding, after the policy. */
function hostAddresses(
  binding: PortBinding,
  intent: PortBinding[],
  publishAll: boolean,
  policy: BindingPolicy,
  warn: (s: string) => void,
  what: string,
): string[] {
  const ip = canonical(binding.HostIp);
  const unspecifiedHere = ip === null || isUnspecified(parseIp(ip));
  // the engine writes 0.0.0.0 / :: where the user wrote nothing; an explicit 0.0.0.0 is in the intent
  const explicit = ip !== null && intent.some((i) => canonical(i.HostIp) === ip);
  const userSaidNothing =
    unspecifiedHere && !explicit && (publishAll || intent.length === 0 || intent.some((i) => !i.HostIp));
  if (userSaidNothing) return policy === "open" ? ALL : LOOPBACKS;
  if (ip === null) return [];
  if (policy === "local-only" && !isLoopback(parseIp(ip))) {
    const lo = ip.includes(":") ? "::1" : "127.0.0.1";
    warn(
      `${what} asks for ${formatHostPort(ip, Number(binding.HostPort))}; --binding local-only publishes it on ${lo} instead`,
    );
    return [lo];
  }
  return [ip];
}

export function wantedPorts(c: ContainerInspect, policy: BindingPolicy): Wanted {
  const out: Wanted = { ports: [], warnings: [], pending: false };
  if (!c.State.Running) return out;
  if (c.HostConfig.NetworkMode === "host") return out; // no port mapping: nothing to publish
  const name = c.Name.replace(/^\//, "") || c.Id.slice(0, 12);
  const resolved = c.NetworkSettings.Ports ?? {};
  const intentMap = c.HostConfig.PortBindings ?? {};
  const publishAll = !!c.HostConfig.PublishAllPorts;
  const keys = new Set([...Object.keys(resolved), ...Object.keys(intentMap)]);
  const target = targetAddress(c);
  const seen = new Set<string>();
  const proxied = proxyProtocolPorts(c.Config?.Labels?.[PROXY_PROTOCOL_LABEL]);
  if (proxied.problem) out.warnings.push(`container ${name}: ${proxied.problem}; no port gets the PROXY header`);
  for (const k of keys) {
    const m = /^(\d+)\/(tcp|udp|sctp)$/.exec(k);
    if (!m) continue;
    const containerPort = Number(m[1]);
    const intent = intentMap[k] ?? [];
    const bindings = resolved[k] ?? [];
    if (m[2] === "sctp") {
      if (bindings.length || intent.length)
        out.warnings.push(`container ${name}: ${k} is not published (SCTP is not supported)`);
      continue;
    }
    const proto = m[2] as Proto;
    if (bindings.length === 0) {
      if (intent.length > 0) out.pending = true; // asked for, not resolved yet
      continue;
    }
    if (!target) {
      out.pending = true;
      continue;
    }
    for (const b of bindings) {
      const hostPort = Number(b.HostPort);
      if (!Number.isInteger(hostPort) || hostPort < 1 || hostPort > 65535) {
        out.pending = true;
        continue;
      }
      const hosts = hostAddresses(
        b,
        intent,
        publishAll,
        policy,
        (s) => out.warnings.push(`container ${name}: ${s}`),
        k,
      );
      for (const hostIp of hosts) {
        const key = portKey(proto, hostIp, hostPort);
        if (seen.has(key)) continue;
        seen.add(key);
        const proxyProtocol = proto === "tcp" && proxied.has(containerPort);
        out.ports.push({
          key,
          hostIp,
          hostPort,
          proto,
          targetIp: target,
          targetPort: containerPort,
          containerId: c.Id,
          containerName: name,
          ...(proxyProtocol ? { proxyProtocol } : {}),
        });
      }
    }
  }
  out.warnings = [...new Set(out.warnings)];
  const v6 = (p: WantedPort) => Number(p.hostIp.includes(":"));
  out.ports.sort(
    (a, b) => a.hostPort - b.hostPort || a.proto.localeCompare(b.proto) || v6(a) - v6(b) || (a.key < b.key ? -1 : 1),
  );
  return out;
}
