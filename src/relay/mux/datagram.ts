/**
 * UDP inside a channel (vpnkit's datagram records), pure code. A channel opened with proto UDP
 * carries a byte stream of records, and a record may span Data frames:
 *
 *   record length u16 (whole record, this field included)
 *   ip length u16, ip bytes
 *   port u16
 *   zone length u16, zone bytes
 *   payload length u16, payload bytes
 *
 * All little-endian. The address is informative only: one channel is one flow, so the host
 * sends an empty address (ip length 0, port 0, like vpnkit) and the VM side writes the address
 * the datagram came from.
 */

/** The largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP); IPv6 allows 8 bytes more, IPv4 peers cannot take them. */
export const MAX_DATAGRAM = 65507;

export interface DatagramRecord {
  /** 0, 4 or 16 bytes */
  ip: Uint8Array;
  port: number;
  zone: string;
  payload: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Encodes one record; the payload is copied. Throws on a payload the format cannot carry. */
export function encodeRecord(payload: Uint8Array, ip: Uint8Array = EMPTY, port = 0, zone = ""): Uint8Array {
  if (payload.length > MAX_DATAGRAM)
    throw new RangeError(`datagram of ${payload.length} bytes is larger than ${MAX_DATAGRAM}`);
  const z = zone ? enc.encode(zone) : EMPTY;
  const len = 2 + 2 + ip.length + 2 + 2 + z.length + 2 + payload.length;
  if (len > 0xffff) throw new RangeError(`datagram record of ${len} bytes does not fit a u16 length`);
  const buf = new Uint8Array(len);
  const dv = new DataView(buf.buffer);
  let o = 0;
  dv.setUint16(o, len, true);
  dv.setUint16((o += 2), ip.length, true);
  buf.set(ip, (o += 2));
  dv.setUint16((o += ip.length), port, true);
  dv.setUint16((o += 2), z.length, true);
  buf.set(z, (o += 2));
  dv.setUint16((o += z.length), payload.length, true);
  buf.set(payload, (o += 2));
  return buf;
}

/**
 * Reassembles records from a byte stream cut anywhere. A record whose fields do not add up is a
 * protocol error (thrown): after it the stream cannot be re-synchronised.
 */
export class RecordDecoder {
  private parts: Uint8Array[] = [];
  private buffered = 0;

  /** Feeds bytes; returns every record completed by them. */
  push(chunk: Uint8Array): DatagramRecord[] {
    if (chunk.length === 0) return [];
    this.parts.push(chunk);
    this.buffered += chunk.length;
    const out: DatagramRecord[] = [];
    while (this.buffered >= 2) {
      const head = this.peek(2);
      const len = head[0]! | (head[1]! << 8);
      if (len < 10) throw new Error(`datagram record length ${len} is shorter than the 10-byte minimum`);
      if (this.buffered < len) break;
      out.push(parseRecord(this.take(len)));
    }
    return out;
  }

  /** bytes of an incomplete record held */
  get pending(): number {
    return this.buffered;
  }

  private peek(n: number): Uint8Array {
    const first = this.parts[0]!;
    if (first.length >= n) return first;
    return this.flatten();
  }

  private flatten(): Uint8Array {
    const all = new Uint8Array(this.buffered);
    let o = 0;
    for (const p of this.parts) {
      all.set(p, o);
      o += p.length;
    }
    this.parts = [all];
    return all;
  }

  private take(n: number): Uint8Array {
    let first = this.parts[0]!;
    if (first.length < n) first = this.flatten();
    const rec = first.subarray(0, n);
    if (first.length === n) this.parts.shift();
    else this.parts[0] = first.subarray(n);
    this.buffered -= n;
    return rec;
  }
}

function parseRecord(r: Uint8Array): DatagramRecord {
  const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
  const bad = (what: string) => new Error(`datagram record of ${r.length} bytes: ${what}`);
  let o = 2;
  const ipLen = dv.getUint16(o, true);
  o += 2;
  if (ipLen !== 0 && ipLen !== 4 && ipLen !== 16) throw bad(`ip length ${ipLen} is not 0, 4 or 16`);
  if (o + ipLen + 4 > r.length) throw bad(`ip length ${ipLen} runs past the record`);
  const ip = r.slice(o, o + ipLen);
  o += ipLen;
  const port = dv.getUint16(o, true);
  o += 2;
  const zoneLen = dv.getUint16(o, true);
  o += 2;
  if (o + zoneLen + 2 > r.length) throw bad(`zone length ${zoneLen} runs past the record`);
  const zone = zoneLen ? dec.decode(r.subarray(o, o + zoneLen)) : "";
  o += zoneLen;
  const payloadLen = dv.getUint16(o, true);
  o += 2;
  if (o + payloadLen !== r.length) throw bad(`payload length ${payloadLen} does not match the record length`);
  return { ip, port, zone, payload: r.subarray(o) };
}
