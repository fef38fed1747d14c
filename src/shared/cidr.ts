/** CIDR ranges (`172.17.0.0/16`, `fd00::/8`, a bare address = /32 or /128). Pure. */
import { formatIp, type IpAddress, type IpFamily, parseIp } from "./address.ts";
import { EdgeportError } from "./errors.ts";

export interface Cidr {
  family: IpFamily;
  /** network address, host bits zeroed */
  bytes: Uint8Array;
  prefix: number;
  text: string;
}

export function parseCidr(input: string): Cidr {
  const [addr, prefixText, ...extra] = input.trim().split("/");
  if (extra.length) throw new EdgeportError("E_BAD_CIDR", `"${input}" is not a CIDR: more than one "/"`);
  let ip: IpAddress;
  try {
    ip = parseIp(addr ?? "");
  } catch (e) {
    throw new EdgeportError("E_BAD_CIDR", `"${input}" is not a CIDR: ${(e as Error).message}`);
  }
  const max = ip.family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText))
    throw new EdgeportError("E_BAD_CIDR", `"${input}" is not a CIDR: prefix "${prefixText}" is not a number`);
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max)
    throw new EdgeportError("E_BAD_CIDR", `"${input}" is not a CIDR: prefix /${prefix} is longer than ${max} bits`);
  const bytes = ip.bytes.slice();
  for (let bit = prefix; bit < max; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family: ip.family, bytes, prefix, text: `${formatIp(bytes)}/${prefix}` };
}

export function cidrContains(c: Cidr, ip: IpAddress): boolean {
  if (c.family !== ip.family) return false;
  const full = c.prefix >> 3;
  for (let i = 0; i < full; i++) if (c.bytes[i] !== ip.bytes[i]) return false;
  const rem = c.prefix & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (c.bytes[full]! & mask) === (ip.bytes[full]! & mask);
}
