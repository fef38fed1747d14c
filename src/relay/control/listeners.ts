/**
 * The listeners extension's lines: the forwarder (`--report-listeners`) opens one channel to
 * LISTENERS_DEST on a pipe whose hellos both list the `listeners` extension, and reports what
 * listens in the VM, one JSON object a line; the host answers which of them it publishes:
 *
 *   vm   -> {"op":"listeners","full":true,"add":[{"proto":"tcp","ip":"0.0.0.0","port":5173,"process":"node"}],"remove":[]}
 *   vm   -> {"op":"listeners","full":false,"add":[],"remove":[{"proto":"tcp","ip":"0.0.0.0","port":5173}]}
 *   host -> {"op":"allow","targets":["tcp:127.0.0.1:5173"]}
 *
 * `full` starts a new picture (the first line of a channel); a large picture spans several lines
 * of at most REPORT_CHUNK entries, only the first of them full. The targets are where the
 * forwarder may dial for the host (targetOf each published listener); it dials a VM loopback
 * address only when it is such a target and still listens. Pure: no IO, no logging.
 */
import { z } from "zod";
import { parseIp } from "../../shared/address.ts";
import { EdgeportError } from "../../shared/errors.ts";

/** The longest line either end reads on this channel. */
export const MAX_LISTENER_LINE = 4 * 1024 * 1024;
/** At most this many listeners in one line. */
export const REPORT_CHUNK = 1000;
/** At most this many listeners are reported (the rest are left out, and the forwarder says so). */
export const MAX_REPORTED = 16384;

const Port = z.number().int().min(1).max(65535);
const Ip = z
  .string()
  .max(64)
  .refine((s) => {
    try {
      return parseIp(s).text === s;
    } catch {
      return false;
    }
  }, "a canonical IP address");

export const ListenerId = z.strictObject({ proto: z.enum(["tcp", "udp"]), ip: Ip, port: Port });
export type ListenerId = z.infer<typeof ListenerId>;
export const VmListener = ListenerId.extend({ process: z.string().max(64).optional() });
export type VmListener = z.infer<typeof VmListener>;

export const ListenerReport = z.strictObject({
  op: z.literal("listeners"),
  full: z.boolean(),
  add: z.array(VmListener).max(REPORT_CHUNK),
  remove: z.array(ListenerId).max(REPORT_CHUNK),
});
export type ListenerReport = z.infer<typeof ListenerReport>;

export const AllowTargets = z.strictObject({
  op: z.literal("allow"),
  targets: z.array(z.string().max(80)).max(MAX_REPORTED),
});
export type AllowTargets = z.infer<typeof AllowTargets>;

const bracket = (ip: string) => (ip.includes(":") ? `[${ip}]` : ip);

/** `tcp:127.0.0.1:5173`, `udp:[::1]:53`: the key of a listener, and of a target. */
export const idKey = (l: ListenerId): string => `${l.proto}:${bracket(l.ip)}:${l.port}`;

/**
 * Where the forwarder dials for a listener: a wildcard one (0.0.0.0, ::) on the VM's loopback of
 * its family, any other on its own address.
 */
export function targetOf(l: ListenerId): ListenerId {
  if (l.ip === "0.0.0.0") return { ...l, ip: "127.0.0.1" };
  if (l.ip === "::") return { ...l, ip: "::1" };
  return { proto: l.proto, ip: l.ip, port: l.port };
}

/** A picture (full) or a change as lines, each ending in a newline. */
export function encodeReport(full: boolean, add: readonly VmListener[], remove: readonly ListenerId[]): string[] {
  const lines: string[] = [];
  let first = full;
  for (let a = 0, r = 0; first || a < add.length || r < remove.length; ) {
    const msg: ListenerReport = {
      op: "listeners",
      full: first,
      add: add.slice(a, a + REPORT_CHUNK),
      remove: remove.slice(r, r + REPORT_CHUNK).map((l) => ({ proto: l.proto, ip: l.ip, port: l.port })),
    };
    a += msg.add.length;
    r += msg.remove.length;
    first = false;
    lines.push(`${JSON.stringify(msg)}\n`);
  }
  return lines;
}

export const encodeAllow = (targets: readonly string[]): string =>
  `${JSON.stringify({ op: "allow", targets: [...targets] } satisfies AllowTargets)}\n`;

function decode<T>(schema: z.ZodType<T>, line: string, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (e) {
    throw new EdgeportError("E_PROTOCOL", `bad ${what}: ${(e as Error).message}`);
  }
  const r = schema.safeParse(json);
  if (!r.success)
    throw new EdgeportError(
      "E_PROTOCOL",
      `bad ${what}: ${r.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`,
    );
  return r.data;
}

export const decodeReport = (line: string): ListenerReport => decode(ListenerReport, line, "listener report");
export const decodeAllow = (line: string): AllowTargets => decode(AllowTargets, line, "allow line");
