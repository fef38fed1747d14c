/** The handshake's authentication decisions: who must prove the pipe secret, and whether a proof holds. */
import { expect, test } from "bun:test";
import type { Frame } from "../../../src/relay/mux/codec.ts";
import { EXTENSIONS } from "../../../src/relay/mux/constants.ts";
import { authMac, authStart, checkProof, type HelloPayload, negotiate } from "../../../src/relay/mux/handshake.ts";

const hello = (role: "host" | "vm", auth: boolean, ext: string[] = [...EXTENSIONS]): HelloPayload => ({
  edgeport: 1,
  role,
  window: 1024 * 1024,
  ext,
  auth,
  nonce: (role === "host" ? "a" : "b").repeat(32),
});

test.each<[string, boolean, HelloPayload | null, ReturnType<typeof authStart>]>([
  ["no secret, plain vpnkit peer", false, null, "ready"],
  ["no secret, edgeport peer without one", false, hello("vm", false), "ready"],
  ["a secret, peer with one", true, hello("vm", true), "prove"],
  [
    "a secret, peer without one",
    true,
    hello("vm", false),
    { refuse: "the peer has no pipe secret (start it with --token-file)" },
  ],
  ["a secret, plain vpnkit peer", true, null, { refuse: "the peer has no pipe secret (start it with --token-file)" }],
  [
    "a secret, peer with one but no auth extension",
    true,
    hello("vm", true, ["ping"]),
    { refuse: "the peer has no pipe secret (start it with --token-file)" },
  ],
  [
    "no secret, peer requires one",
    false,
    hello("vm", true),
    { refuse: "the peer requires a pipe secret (pass --token-file)" },
  ],
])("authStart: %s", (_name, hasSecret, peer, want) => {
  const local = hello("host", hasSecret);
  expect(authStart(hasSecret, peer, negotiate(local, peer))).toEqual(want);
});

test("checkProof: the peer's MAC over both nonces proves the same secret; another secret or frame does not", () => {
  const secret = new TextEncoder().encode("the pipe secret, long enough");
  const local = hello("host", true);
  const peer = hello("vm", true);
  const proof = (mac: Uint8Array): Frame => ({ cmd: "auth", id: 0, mac });
  expect(checkProof(secret, peer, local, proof(authMac(secret, peer, local)))).toBeNull();
  const other = new TextEncoder().encode("another secret, long enough");
  expect(checkProof(secret, peer, local, proof(authMac(other, peer, local)))).toBe("the pipe secrets differ");
  // our own proof sent back is not the peer's
  expect(checkProof(secret, peer, local, proof(authMac(secret, local, peer)))).toBe("the pipe secrets differ");
  expect(checkProof(secret, peer, local, { cmd: "ping", id: 0, nonce: 1 })).toBe(
    "the peer sent ping before proving the pipe secret",
  );
});
