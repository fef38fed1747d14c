/**
 * The `edgeport publish` SPEC: `[HOST_IP:]HOST_PORT[-END]:TARGET_IP:TARGET_PORT[-END][/tcp|/udp]`,
 * IPv6 in brackets (`[::1]:8443:[fd00::2]:443`), or a socket forward
 * `unix:///HOST_PATH:unix:///VM_PATH` (socket-spec.ts). No HOST_IP (or `localhost`) means loopback on
 * both families: the spec expands to a mapping on 127.0.0.1 and one on ::1 for each port.
 * `0.0.0.0` and `::` are kept as written: never widened, never narrowed. Pure.
 */
import { z } from "zod";
import { formatHostPort, isUnspecified, parseIp, resolveHostLike } from "./address.ts";
import { EdgeportError } from "./errors.ts";
import { isSocketSpec, parseSocketSpec, socketUrl } from "./socket-spec.ts";

/** unix: a socket forward, whose addresses are paths and whose ports are 0 (socket-spec.ts) */
export const Proto = z.enum(["tcp", "udp", "unix"]);
export type Proto = z.infer<typeof Proto>;
/** what a port spec's `/tcp` or `/udp` may say */
const PortProto = z.enum(["tcp", "udp"]);

export const PortMapping = z.object({
  hostIp: z.string(),
  hostPort: z.number().int().min(0).max(65535),
  targetIp: z.string(),
  /** 0 for a socket forward */
  targetPort: z.number().int().min(0).max(65535),
  proto: Proto,
  /** TCP only: each connection starts with a PROXY protocol v2 header carrying the client's address */
  proxyProtocol: z.boolean().optional(),
});
export type PortMapping = z.infer<typeof PortMapping>;

const Port = z.coerce.number().int().min(1).max(65535);

/** Splits on ":" outside brackets. */
function tokens(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let depth = 0;
  for (const ch of s) {
    if (ch === "[") depth++;
    if (ch === "]") depth--;
    if (ch === ":" && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** A container name or id as TARGET (resolved by the daemon through the engine). */
const CONTAINER_REF = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/**
 * Parses a SPEC. With `targetNames`, a TARGET that is not an IP but looks like a container name
 * or id is kept in `targetName` (targetIp is then "").
 */
export function parsePortSpec(
  spec: string,
  o: { targetNames?: boolean } = {},
): (PortMapping & { targetName?: string })[] {
  const fail = (why: string): never => {
    throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": ${why}`);
  };
  if (spec.trim() === "") fail("it is empty");
  if (/\s/.test(spec)) fail("it contains spaces");
  if (isSocketSpec(spec)) {
    const f = parseSocketSpec(spec);
    return [{ hostIp: f.hostPath, hostPort: 0, targetIp: f.vmPath, targetPort: 0, proto: "unix" }];
  }
  let body = spec;
  let proto: Proto = "tcp";
  const slash = spec.lastIndexOf("/");
  if (slash >= 0) {
    const p = PortProto.safeParse(spec.slice(slash + 1).toLowerCase());
    if (!p.success) fail(`protocol "${spec.slice(slash + 1)}" is not tcp or udp`);
    proto = p.data!;
    body = spec.slice(0, slash);
  }
  if (body.split("[").length !== body.split("]").length) fail('unbalanced brackets: every "[" needs its "]"');
  const t = tokens(body);
  if (t.some((x) => !x.startsWith("[") && x.includes("]"))) fail("unbalanced brackets");
  if (t.length > 4) fail('too many ":" (write IPv6 addresses in brackets, e.g. [::1]:8080:[fd00::2]:80)');
  const portLike = (x: string | undefined) => x !== undefined && /^[\d-]+$/.test(x);
  // 127.0.0.1:8080:10.0.0.1 and 8080:10.0.0.1: the last part is an address, not a port
  if ((t.length === 3 && !portLike(t[0]) && portLike(t[1])) || (t.length === 2 && portLike(t[0]) && !portLike(t[1])))
    fail(`TARGET_PORT is missing after "${t[t.length - 1]}" (e.g. ${body}:80)`);
  if (t.length < 3) fail("expected [HOST_IP:]HOST_PORT:TARGET_IP:TARGET_PORT");
  const [hostIpText, hostPortText, targetIpText, targetPortText] = t.length === 4 ? t : [undefined, ...t];

  const range = (text: string, what: string): [number, number] => {
    const [a, b, ...more] = text.split("-");
    if (more.length || a === "") fail(`${what} "${text}" is not a port or a START-END range`);
    const start = Port.safeParse(a);
    if (!/^\d+$/.test(a!) || !start.success) fail(`${what} "${a}" is not a number 1-65535`);
    if (b === undefined) return [start.data!, start.data!];
    const end = Port.safeParse(b);
    if (!/^\d+$/.test(b) || !end.success) fail(`${what} "${b}" is not a number 1-65535`);
    if (end.data! < start.data!) fail(`${what} range "${text}" ends before it starts`);
    return [start.data!, end.data!];
  };
  const ip = (text: string, what: string) => {
    try {
      return resolveHostLike(
        text.startsWith("[") && !text.endsWith("]") ? fail(`${what} "${text}" has no closing "]"`) : text,
      );
    } catch (e) {
      if (e instanceof EdgeportError && e.code === "E_BAD_SPEC") throw e;
      return fail(`${what} ${(e as Error).message}`);
    }
  };
  if (targetIpText === "") fail("TARGET_IP is missing");
  if (hostIpText === "") fail("HOST_IP is empty (leave it out for loopback)");
  const hostIps = hostIpText === undefined ? ip("localhost", "host IP") : ip(hostIpText, "host IP");
  let targetName: string | undefined;
  let targets: ReturnType<typeof ip>;
  try {
    targets = ip(targetIpText!, "target IP");
  } catch (e) {
    if (!o.targetNames || !CONTAINER_REF.test(targetIpText!) || /^[\d.]+$/.test(targetIpText!)) throw e;
    targetName = targetIpText!;
    targets = [{ family: 4, bytes: new Uint8Array(4), text: "" }];
  }
  if (targets.length !== 1) fail(`target IP "${targetIpText}" must be one address, not localhost`);
  const target = targets[0]!;
  if (!targetName && isUnspecified(target))
    fail(`target IP "${targetIpText}" is unspecified; name the container's address`);
  const [hs, he] = range(hostPortText!, "host port");
  const [ts, te] = range(targetPortText!, "target port");
  if (he - hs !== te - ts)
    fail(
      `host range "${hostPortText}" has ${he - hs + 1} ports but target range "${targetPortText}" has ${te - ts + 1}`,
    );
  const out: (PortMapping & { targetName?: string })[] = [];
  for (const h of hostIps) {
    for (let i = 0; i <= he - hs; i++) {
      out.push({
        hostIp: h.text,
        hostPort: hs + i,
        targetIp: target.text,
        targetPort: ts + i,
        proto,
        ...(targetName ? { targetName } : {}),
      });
    }
  }
  return out;
}

export const formatMapping = (m: PortMapping): string =>
  m.proto === "unix"
    ? `${socketUrl(m.hostIp)} -> ${socketUrl(m.targetIp)}`
    : `${formatHostPort(m.hostIp, m.hostPort)} -> ${formatHostPort(m.targetIp, m.targetPort)}/${m.proto}${m.proxyProtocol ? " (PROXY v2)" : ""}`;

// re-exported for callers that validate parsed addresses themselves
export { parseIp };
