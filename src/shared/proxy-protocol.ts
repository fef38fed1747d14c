/**
 * The PROXY protocol, version 2 (binary), as HAProxy's specification defines it: the header a
 * published port can send to the container before the client's first byte, so that the server
 * learns the client's real address (a relay across a VM boundary otherwise shows its own). TCP
 * only; opted into per port. Pure.
 *
 *   12-byte signature | 0x21 (v2, PROXY) | 0x11 TCP/IPv4 or 0x21 TCP/IPv6 | length (u16 BE) |
 *   source address | destination address | source port | destination port
 */
import { formatIp, parseIp } from "./address.ts";

export const PROXY_V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);

/** IPv6 bytes of an address: an IPv4 address as ::ffff:a.b.c.d */
function v6Bytes(b: Uint8Array): Uint8Array {
  if (b.length === 16) return b;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(b, 12);
  return out;
}

/**
 * The header for a TCP connection from `src` to `dst` (addresses as text, any form parseIp takes).
 * Both IPv4: the IPv4 form (28 bytes); otherwise IPv6 (52 bytes), an IPv4 side written as
 * ::ffff:a.b.c.d. parseIp reads an IPv4-mapped address as IPv4, so a mapped pair is IPv4 here.
 */
export function proxyV2Header(src: { ip: string; port: number }, dst: { ip: string; port: number }): Uint8Array {
  const s = parseIp(src.ip).bytes;
  const d = parseIp(dst.ip).bytes;
  const v4 = s.length === 4 && d.length === 4;
  const alen = v4 ? 4 : 16;
  const out = new Uint8Array(16 + 2 * alen + 4);
  const v = new DataView(out.buffer);
  out.set(PROXY_V2_SIGNATURE, 0);
  out[12] = 0x21;
  out[13] = v4 ? 0x11 : 0x21;
  v.setUint16(14, 2 * alen + 4);
  out.set(v4 ? s : v6Bytes(s), 16);
  out.set(v4 ? d : v6Bytes(d), 16 + alen);
  v.setUint16(16 + 2 * alen, src.port);
  v.setUint16(18 + 2 * alen, dst.port);
  return out;
}

/** Reads a header back (for tests and tools): the addresses and ports, and how long it was. */
export function parseProxyV2(
  b: Uint8Array,
): { src: { ip: string; port: number }; dst: { ip: string; port: number }; length: number } | null {
  if (b.length < 16 || !PROXY_V2_SIGNATURE.every((x, i) => b[i] === x) || b[12] !== 0x21) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const len = v.getUint16(14);
  const alen = b[13] === 0x11 ? 4 : b[13] === 0x21 ? 16 : 0;
  if (!alen || len < 2 * alen + 4 || b.length < 16 + len) return null;
  const text = (a: Uint8Array) => formatIp(a.slice());
  return {
    src: { ip: text(b.subarray(16, 16 + alen)), port: v.getUint16(16 + 2 * alen) },
    dst: { ip: text(b.subarray(16 + alen, 16 + 2 * alen)), port: v.getUint16(18 + 2 * alen) },
    length: 16 + len,
  };
}
