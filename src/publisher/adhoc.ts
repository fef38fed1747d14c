/**
 * Ad-hoc entries: a SPEC published by hand (or for dockerd's userland proxy) becomes wanted ports
 * under one stable id, the hash of what the spec means after the binding policy, so the same spec
 * always gives the same id. Pure: container names are resolved by the caller beforehand.
 */
import { type BindingPolicy, portKey, type WantedPort } from "../events/wanted.ts";
import { isLoopback, isUnspecified, parseIp } from "../shared/address.ts";
import { EdgeportError } from "../shared/errors.ts";
import { type PortMapping, parsePortSpec } from "../shared/port-spec.ts";

export type PortSource = "ad-hoc" | "docker-proxy";

export interface AdhocEntry {
  id: string;
  spec: string;
  source: PortSource;
  /** each connection starts with the PROXY v2 header */
  proxyProtocol: boolean;
  wants: WantedPort[];
}

export interface AdhocOptions {
  binding: BindingPolicy;
  /** why this host port may never be published, or null */
  reserved?: (port: number) => string | null;
  /** container name -> its address, for every name targetNames() gave */
  names: ReadonlyMap<string, string>;
}

const ADHOC = "adhoc:";

/** The entry id of an ad-hoc wanted port; null for a container's. */
export const adhocIdOf = (w: WantedPort): string | null =>
  w.containerId.startsWith(ADHOC) ? w.containerId.slice(ADHOC.length) : null;

/** The id to unpublish a port with: its entry's, or `c-<container id>`. */
export const portIdOf = (w: WantedPort): string => adhocIdOf(w) ?? `c-${w.containerId.slice(0, 12)}`;

/** The container names a spec targets (to be resolved before adhocEntry). Throws E_BAD_SPEC. */
export function targetNames(spec: string): string[] {
  return [...new Set(parsePortSpec(spec, { targetNames: true }).flatMap((m) => (m.targetName ? [m.targetName] : [])))];
}

/** Whether a spec could carry the PROXY header (TCP only). */
export const allTcp = (spec: string): boolean =>
  parsePortSpec(spec, { targetNames: true }).every((m) => m.proto === "tcp");

/** The host addresses a mapping asked for after the policy: local-only narrows to loopback (with a note). */
function applyPolicy(m: PortMapping, spec: string, binding: BindingPolicy, notes: string[]): PortMapping {
  if (m.proto === "unix") return m; // a path, reachable from this host only
  const ip = parseIp(m.hostIp);
  if (binding !== "local-only" || isLoopback(ip)) return m;
  const lo = ip.family === 6 ? "::1" : "127.0.0.1";
  notes.push(`${spec}: --binding local-only publishes ${m.hostIp} on ${lo} instead`);
  return { ...m, hostIp: lo };
}

function canonicalId(mappings: PortMapping[], proxyProtocol: boolean): string {
  const canon = mappings
    .map((m) => `${m.proto} ${m.hostIp} ${m.hostPort} ${m.targetIp} ${m.targetPort}${proxyProtocol ? " proxy-v2" : ""}`)
    .sort()
    .join(",");
  return new Bun.CryptoHasher("sha256").update(canon).digest("hex").slice(0, 12);
}

/**
 * The entry a spec means, and the notes to tell the user (a narrowed address). Throws
 * EdgeportError E_BAD_SPEC naming the problem.
 */
export function adhocEntry(
  spec: string,
  source: PortSource,
  proxyProtocol: boolean,
  o: AdhocOptions,
): { entry: AdhocEntry; notes: string[] } {
  const parsed = parsePortSpec(spec, { targetNames: true });
  if (proxyProtocol && parsed.some((m) => m.proto !== "tcp"))
    throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": the PROXY protocol is for TCP only`);
  const notes: string[] = [];
  const mappings = parsed.map((m) => {
    const targetIp = m.targetName ? o.names.get(m.targetName) : m.targetIp;
    if (targetIp === undefined) throw new EdgeportError("E_BAD_SPEC", `no address for container "${m.targetName}"`);
    const mapping = { hostIp: m.hostIp, hostPort: m.hostPort, proto: m.proto, targetPort: m.targetPort, targetIp };
    return applyPolicy(mapping, spec, o.binding, notes);
  });
  for (const m of mappings) {
    if (m.proto !== "unix" && isUnspecified(parseIp(m.targetIp)))
      throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": the target address is unspecified`);
  }
  for (const m of mappings) {
    const why = m.proto === "unix" ? null : o.reserved?.(m.hostPort);
    if (why) throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": ${why}`);
  }
  const id = canonicalId(mappings, proxyProtocol);
  const keys = new Set<string>();
  const wants = mappings.map((m) => {
    const key = portKey(m.proto, m.hostIp, m.hostPort);
    if (keys.has(key)) throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": ${key} appears twice`);
    keys.add(key);
    return {
      key,
      ...m,
      containerId: `${ADHOC}${id}`,
      containerName: source === "docker-proxy" ? "(docker-proxy)" : "(ad-hoc)",
      ...(proxyProtocol ? { proxyProtocol } : {}),
    } satisfies WantedPort;
  });
  return { entry: { id, spec, source, proxyProtocol, wants }, notes };
}
