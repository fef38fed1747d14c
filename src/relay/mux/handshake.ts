/**
 * The handshake: vpnkit's magic, then a u16-length payload. vpnkit sends an empty payload;
 * edgeport sends a small JSON object naming its extensions. Pure code.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { ByteQueue } from "./byte-queue.ts";
import { type Frame, ProtocolError } from "./codec.ts";
import {
  EXT_AUTH,
  EXTENSIONS,
  HANDSHAKE_FIXED_LEN,
  MAGIC,
  MAX_HANDSHAKE_PAYLOAD,
  MAX_WINDOW,
  MIN_WINDOW,
  VPNKIT_WINDOW,
} from "./constants.ts";

export type Extension = (typeof EXTENSIONS)[number];

/** What an edgeport end announces about itself. */
export const HelloPayload = z.object({
  edgeport: z.literal(1),
  version: z.string().max(64).optional(),
  role: z.enum(["host", "vm"]),
  window: z.number().int().min(MIN_WINDOW).max(MAX_WINDOW),
  ext: z.array(z.string().max(32)).max(32),
  /** true when this end holds a pipe secret and will send and require an Auth frame */
  auth: z.boolean(),
  /** 16 random bytes, hex: the other end's Auth MAC covers it */
  nonce: z.string().regex(/^[0-9a-f]{32}$/),
});
export type HelloPayload = z.infer<typeof HelloPayload>;

export interface PeerHello {
  /** null for a plain vpnkit peer (empty payload) or a payload edgeport does not understand */
  hello: HelloPayload | null;
  /** bytes received after the handshake (the start of the frame stream) */
  rest: ByteQueue;
}

export function encodeHandshake(payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_HANDSHAKE_PAYLOAD) throw new RangeError("handshake payload too large");
  const out = new Uint8Array(HANDSHAKE_FIXED_LEN + payload.length);
  out.set(MAGIC, 0);
  out[MAGIC.length] = payload.length & 0xff;
  out[MAGIC.length + 1] = payload.length >> 8;
  out.set(payload, HANDSHAKE_FIXED_LEN);
  return out;
}

export const encodeHello = (hello: HelloPayload): Uint8Array =>
  encodeHandshake(new TextEncoder().encode(JSON.stringify(hello)));

/** Reads the peer's handshake from chunks; `push` returns the result once it is complete. */
export class HandshakeReader {
  private q = new ByteQueue();

  push(chunk: Uint8Array): PeerHello | null {
    this.q.push(chunk);
    const magicSeen = Math.min(this.q.length, MAGIC.length);
    const head = this.q.peek(magicSeen);
    for (let i = 0; i < magicSeen; i++) {
      if (head[i] !== MAGIC[i]) throw new ProtocolError("the peer is not a vpnkit multiplexer (wrong handshake magic)");
    }
    if (this.q.length < HANDSHAKE_FIXED_LEN) return null;
    const fixed = this.q.peek(HANDSHAKE_FIXED_LEN);
    const n = fixed[MAGIC.length]! | (fixed[MAGIC.length + 1]! << 8);
    if (n > MAX_HANDSHAKE_PAYLOAD)
      throw new ProtocolError(`handshake payload of ${n} bytes exceeds ${MAX_HANDSHAKE_PAYLOAD}`);
    if (this.q.length < HANDSHAKE_FIXED_LEN + n) return null;
    this.q.skip(HANDSHAKE_FIXED_LEN);
    const payload = this.q.take(n);
    return { hello: parseHello(payload), rest: this.q };
  }
}

export function parseHello(payload: Uint8Array): HelloPayload | null {
  if (payload.length === 0) return null;
  try {
    const parsed = HelloPayload.safeParse(JSON.parse(new TextDecoder().decode(payload)));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** What two ends agreed on. */
export interface Negotiated {
  edgeportPeer: boolean;
  ext: Set<Extension>;
  /** the window this end advertises on each channel at first */
  recvWindow: number;
  /** what that window may grow to (the same for a plain vpnkit peer: no growth) */
  recvWindowMax: number;
}

export function negotiate(local: HelloPayload, peer: HelloPayload | null, windowMax = local.window): Negotiated {
  if (!peer) return { edgeportPeer: false, ext: new Set(), recvWindow: VPNKIT_WINDOW, recvWindowMax: VPNKIT_WINDOW };
  const ext = new Set<Extension>(EXTENSIONS.filter((e) => local.ext.includes(e) && peer.ext.includes(e)));
  return { edgeportPeer: true, ext, recvWindow: local.window, recvWindowMax: Math.max(local.window, windowMax) };
}

const AUTH_LABEL = "edgeport-pipe-auth-v1";

/** The Auth frame's MAC: proves `from` holds the secret, bound to both ends' fresh nonces. */
export const authMac = (secret: Uint8Array, from: HelloPayload, to: HelloPayload): Uint8Array =>
  createHmac("sha256", secret).update(`${AUTH_LABEL}\0${from.role}\0${from.nonce}\0${to.nonce}`).digest();

/** What an end does once the hellos are exchanged: refuse the pipe (and why), prove its secret, or be ready. */
export type AuthStart = { refuse: string } | "prove" | "ready";

export function authStart(hasSecret: boolean, peer: HelloPayload | null, negotiated: Negotiated): AuthStart {
  const peerAuth = !!peer?.auth && negotiated.ext.has(EXT_AUTH);
  if (hasSecret && !peerAuth) return { refuse: "the peer has no pipe secret (start it with --token-file)" };
  if (!hasSecret && peer?.auth) return { refuse: "the peer requires a pipe secret (pass --token-file)" };
  return hasSecret && peer ? "prove" : "ready";
}

/** Checks the first frame after the hellos against the peer's proof of the secret: null when it proves it, else why not. */
export function checkProof(secret: Uint8Array, peer: HelloPayload, local: HelloPayload, f: Frame): string | null {
  if (f.cmd !== "auth") return `the peer sent ${f.cmd} before proving the pipe secret`;
  const expected = authMac(secret, peer, local);
  return timingSafeEqual(Buffer.from(f.mac), Buffer.from(expected)) ? null : "the pipe secrets differ";
}
