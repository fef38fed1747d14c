/**
 * The kernel's socket tables as /proc/net/{tcp,tcp6,udp,udp6} print them, reduced to what listens:
 * TCP sockets in LISTEN, UDP sockets that are bound and not connected. Pure: text in, sockets out.
 *
 * An address is printed as 32-bit words in the host's byte order (one word for IPv4, four for
 * IPv6), each as 8 hex digits: on a little-endian machine 127.0.0.1 is `0100007F`.
 */
import { formatIp } from "../../../shared/address.ts";

export type ListenProto = "tcp" | "udp";

/** One listening socket of the VM. */
export interface ProcSocket {
  proto: ListenProto;
  /** canonical text (`0.0.0.0`, `::`, `127.0.0.1`, `::1`, `10.0.2.15`) */
  ip: string;
  port: number;
  /** the socket's inode (0 when the kernel hides it) */
  inode: number;
}

/** The files to read, and what each one holds. */
export const PROC_NET_FILES = [
  { file: "tcp", proto: "tcp" },
  { file: "tcp6", proto: "tcp" },
  { file: "udp", proto: "udp" },
  { file: "udp6", proto: "udp" },
] as const;

const TCP_LISTEN = "0A";
const UDP_UNCONNECTED = "07";
const HEX = /^[0-9A-Fa-f]+$/;

/** A hex address of the table (8 or 32 digits) as bytes in network order. */
export function decodeProcAddress(hex: string, littleEndian = true): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let word = 0; word < hex.length / 8; word++) {
    for (let i = 0; i < 4; i++) {
      const at = word * 8 + (littleEndian ? (3 - i) * 2 : i * 2);
      out[word * 4 + i] = Number.parseInt(hex.slice(at, at + 2), 16);
    }
  }
  return out;
}

/** The listening sockets of one table's text; a line that does not parse is skipped. */
export function parseProcNet(text: string, proto: ListenProto, littleEndian = true): ProcSocket[] {
  const want = proto === "tcp" ? TCP_LISTEN : UDP_UNCONNECTED;
  const out: ProcSocket[] = [];
  let start = text.indexOf("\n") + 1; // the header line
  while (start > 0 && start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    const f = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    if (f.length < 10 || f[3] !== want) continue;
    const [addr, portHex] = f[1]!.split(":");
    if (!addr || !portHex || (addr.length !== 8 && addr.length !== 32) || !HEX.test(addr) || !HEX.test(portHex))
      continue;
    if (proto === "udp" && !/^0+:0+$/.test(f[2]!)) continue; // connected: a client, not a listener
    const port = Number.parseInt(portHex, 16);
    const inode = Number(f[9]);
    if (!(port > 0) || !Number.isSafeInteger(inode)) continue;
    out.push({ proto, ip: formatIp(decodeProcAddress(addr, littleEndian)), port, inode });
  }
  return out;
}
