/** The session's liveness timer: pings a quiet peer, declares a silent one dead, waits during the handshake. */
import { afterEach, expect, test } from "bun:test";
import { Keepalive, type KeepaliveHooks } from "../../../src/relay/mux/keepalive.ts";
import { until } from "../../helpers/until.ts";

let running: Keepalive | null = null;
afterEach(() => running?.stop());

function bed(settings: { keepaliveMs?: number; deadAfterMs?: number }, over: Partial<KeepaliveHooks> = {}) {
  const seen = { pings: [] as number[], dead: [] as string[], ticks: 0 };
  const keepalive = new Keepalive(settings, {
    handshaking: () => {
      seen.ticks++;
      return false;
    },
    peerPings: () => true,
    ping: (nonce) => void seen.pings.push(nonce),
    dead: (detail) => {
      seen.dead.push(detail);
      keepalive.stop(); // as the session does when it fails
    },
    ...over,
  });
  running = keepalive;
  return { keepalive, seen };
}

test("a quiet peer is pinged with rising nonces, then declared dead", async () => {
  const { keepalive, seen } = bed({ keepaliveMs: 20, deadAfterMs: 100 });
  keepalive.start();
  await until(() => seen.dead.length === 1, "the peer declared dead", 5000);
  expect(seen.pings.length).toBeGreaterThanOrEqual(1);
  expect(seen.pings).toEqual(seen.pings.map((_, i) => i + 1));
  expect(seen.dead[0]).toMatch(/^no bytes from the peer for \d+ ms \(keepalive\)$/);
});

test("during the handshake a silent peer is never pinged, and is dead after deadAfterMs", async () => {
  const { keepalive, seen } = bed({ keepaliveMs: 10, deadAfterMs: 80 }, { handshaking: () => true });
  keepalive.start();
  await until(() => seen.dead.length === 1, "the handshake timing out", 5000);
  expect(seen.pings).toEqual([]);
  expect(seen.dead[0]).toMatch(/^the peer did not complete the handshake within \d+ ms$/);
});

test("a peer that does not answer pings (plain vpnkit) is never pinged nor declared dead", async () => {
  const { keepalive, seen } = bed({ keepaliveMs: 10, deadAfterMs: 20 }, { peerPings: () => false });
  keepalive.start();
  // ten ticks, most long past deadAfterMs of silence
  await until(() => seen.ticks >= 10, "ten ticks", 5000);
  expect(seen.pings).toEqual([]);
  expect(seen.dead).toEqual([]);
});

test("keepaliveMs 0: no pings and no death for a ready peer", async () => {
  const { keepalive, seen } = bed({ keepaliveMs: 0, deadAfterMs: 20 });
  keepalive.start();
  await until(() => seen.ticks >= 10, "ten ticks", 5000);
  expect(seen.pings).toEqual([]);
  expect(seen.dead).toEqual([]);
});

test("bytes heard on every tick keep a peer alive and unpinged", async () => {
  const { keepalive, seen } = bed(
    { keepaliveMs: 300, deadAfterMs: 600 },
    {
      handshaking: () => {
        seen.ticks++;
        keepalive.heard();
        return false;
      },
    },
  );
  keepalive.start();
  // the tick is 150 ms: eight of them are twice deadAfterMs
  await until(() => seen.ticks >= 8, "eight ticks", 5000);
  expect(seen.pings).toEqual([]);
  expect(seen.dead).toEqual([]);
});
