/**
 * IP addresses, canonicalised before any policy looks at them: `[::1]` -> `::1`,
 * `::ffff:1.2.3.4` -> `1.2.3.4`, surrounding spaces trimmed. Ambiguous legacy forms (`0`,
 * `127.1`) and zone ids are refused with a message that says what to write instead. Pure.
 */
import { EdgeportError } from "./errors.ts";

export type IpFamily = 4 | 6;
export interface IpAddress {
  family: IpFamily;
  bytes: Uint8Array;
  /** canonical text: dotted quad, or RFC 5952 lower-case compressed IPv6 */
  text: string;
}

const bad = (input: string, why: string) =>
  new EdgeportError("E_BAD_ADDRESS", `"${input}" is not an IP address: ${why}`);

function parseV4(s: string, input: string): Uint8Array | null {
  if (!/^[0-9.]+$/.test(s)) return null;
  const parts = s.split(".");
  if (parts.length !== 4) {
    throw bad(
      input,
      `IPv4 needs four dotted numbers (write ${parts.length === 1 && s === "0" ? "0.0.0.0" : "e.g. 127.0.0.1"})`,
    );
  }
  const out = new Uint8Array(4);
  parts.forEach((p, i) => {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw bad(input, `"${p}" is not a number 0-255`);
    if (p.length > 1 && p.startsWith("0")) throw bad(input, `"${p}" has a leading zero (octal is ambiguous)`);
    out[i] = Number(p);
  });
  return out;
}

function parseV6(s: string, input: string): Uint8Array {
  if (s.includes("%")) throw bad(input, "zone ids (%eth0) are not supported");
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    const v4 = parseV4(s.slice(lastColon + 1), input);
    if (!v4) throw bad(input, "bad embedded IPv4 part");
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    s = `${s.slice(0, lastColon + 1)}${tail.length ? "0:0" : ""}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) throw bad(input, '"::" may appear only once');
  const group = (g: string) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad(input, `"${g}" is not a 16-bit hex group`);
    return parseInt(g, 16);
  };
  const head = halves[0] ? halves[0].split(":").map(group) : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(":").map(group) : [];
  let groups: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - rest.length;
    if (fill < 1) throw bad(input, "too many groups");
    groups = [...head, ...new Array(fill).fill(0), ...rest];
  } else {
    groups = head;
    if (groups.length !== 8) throw bad(input, `IPv6 needs 8 groups, got ${groups.length}`);
  }
  if (tail.length) groups.splice(6, 2, ...tail);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

const isMappedV4 = (b: Uint8Array) =>
  b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join(".");
  if (bytes.length !== 16) throw new RangeError("an IP address has 4 or 16 bytes");
  const g = Array.from({ length: 8 }, (_, i) => (bytes[i * 2]! << 8) | bytes[i * 2 + 1]!);
  // longest run of zero groups (length >= 2) becomes "::"
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

export function parseIp(input: string): IpAddress {
  let s = input.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  if (s === "") throw bad(input, "empty");
  if (s.includes(":")) {
    const b = parseV6(s, input);
    if (isMappedV4(b)) {
      const v4 = b.slice(12);
      return { family: 4, bytes: v4, text: formatIp(v4) };
    }
    return { family: 6, bytes: b, text: formatIp(b) };
  }
  const v4 = parseV4(s, input);
  if (!v4) throw bad(input, "write an IPv4 or IPv6 address (host names are not accepted here)");
  return { family: 4, bytes: v4, text: formatIp(v4) };
}

/** `localhost` means both loopbacks; anything else must be an IP address. */
export function resolveHostLike(s: string): IpAddress[] {
  if (s.trim().toLowerCase() === "localhost") return [parseIp("127.0.0.1"), parseIp("::1")];
  return [parseIp(s)];
}

export const formatHostPort = (ip: string, port: number): string =>
  ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;

export const isUnspecified = (a: IpAddress): boolean => a.bytes.every((b) => b === 0);
export const isLoopback = (a: IpAddress): boolean =>
  a.family === 4 ? a.bytes[0] === 127 : a.bytes.subarray(0, 15).every((b) => b === 0) && a.bytes[15] === 1;
export const isLinkLocal = (a: IpAddress): boolean =>
  a.family === 4 ? a.bytes[0] === 169 && a.bytes[1] === 254 : a.bytes[0] === 0xfe && (a.bytes[1]! & 0xc0) === 0x80;
export const isMulticast = (a: IpAddress): boolean =>
  a.family === 4 ? a.bytes[0]! >= 224 && a.bytes[0]! <= 239 : a.bytes[0] === 0xff;
