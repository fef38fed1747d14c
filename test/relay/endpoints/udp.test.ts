/**
 * UDP through the whole relay in one process over real sockets: the host's UDP listener, the
 * relay client, a forwarder on a unix socket, and a loopback UDP echo server as the target.
 * The test bed's containers get the same treatment in test/e2e/udp.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola";
import { openUdpListener, type UdpListener } from "../../../src/publisher/udp-listener.ts";
import { createDialPolicy } from "../../../src/relay/forwarder/dial-policy.ts";
import { type Forwarder, startForwarder } from "../../../src/relay/forwarder/forwarder.ts";
import { createRelayClient, type RelayClient } from "../../../src/relay/host/relay-client.ts";
import { parseTransportUrl } from "../../../src/relay/transports/url.ts";
import { udpClient } from "../../helpers/udp-client.ts";
import { until } from "../../helpers/until.ts";

const quiet = createConsola({ level: -999 });
const dir = mkdtempSync(join(tmpdir(), "edgeport-udp-"));
let echo: dgram.Socket;
let echoPort: number;
let fwd: Forwarder;
let relay: RelayClient;
const listeners: UdpListener[] = [];

async function listen(
  o: { idleMs?: number; maxFlows?: number; hostIp?: string; targetPort?: number } = {},
): Promise<UdpListener> {
  const l = openUdpListener(
    {
      hostIp: o.hostIp ?? "127.0.0.1",
      hostPort: 0,
      targetIp: "127.0.0.1",
      targetPort: o.targetPort ?? echoPort,
      proto: "udp",
    },
    relay,
    { log: quiet, pipeWaitMs: 2000, idleMs: o.idleMs, maxFlows: o.maxFlows },
  );
  listeners.push(l);
  await l.ready;
  return l;
}

beforeAll(async () => {
  echo = dgram.createSocket("udp4");
  echo.on("message", (m, r) => echo.send(m, r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, "127.0.0.1", () => r()));
  echo.setRecvBufferSize(4 << 20);
  echoPort = echo.address().port;
  fwd = startForwarder({
    listen: parseTransportUrl(`unix://${join(dir, "fwd.sock")}`, "listen"),
    policy: createDialPolicy({ allow: ["127.0.0.1/32"] }),
    log: quiet,
  });
  relay = createRelayClient({ url: parseTransportUrl(fwd.address, "connect"), log: quiet });
  await relay.session(5000);
});
afterAll(async () => {
  for (const l of listeners) await l.close();
  relay.close();
  fwd.close();
  echo.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("UDP through the relay", () => {
  test("sizes 0, 1, 1472, 1473, 9000 and 65507 echo whole, on 127.0.0.1 and ::1, from the published address", async () => {
    for (const host of ["127.0.0.1", "::1"]) {
      const l = await listen({ hostIp: host });
      const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
      const got: { m: Buffer; from: string; port: number }[] = [];
      sock.on("message", (m, r) => got.push({ m, from: r.address, port: r.port }));
      await new Promise<void>((r) => sock.bind(0, host, () => r()));
      const sizes = [0, 1, 1472, 1473, 9000, 65507];
      for (const n of sizes) {
        const payload = Buffer.alloc(n, n & 0xff);
        sock.send(payload, l.port, host);
        await until(() => got.length === sizes.indexOf(n) + 1, `the ${n}-byte echo`, 2000);
        expect(got.at(-1)!.m.equals(payload)).toBe(true);
        expect(got.at(-1)!.from).toBe(host);
        expect(got.at(-1)!.port).toBe(l.port);
      }
      sock.close();
      expect(l.stats()).toMatchObject({ flows: 1, flowsOpened: 1, datagramsIn: 6, datagramsOut: 6, dropped: 0 });
    }
  });

  test("20 clients x 200 datagrams with distinct payloads: each gets exactly its own back", async () => {
    const l = await listen();
    const clients = await Promise.all(Array.from({ length: 20 }, () => udpClient(l.port)));
    await Promise.all(
      clients.map(async (c, k) => {
        for (let i = 0; i < 200; i++) {
          const msg = `client ${k} seq ${i} ${"x".repeat((k * 37 + i) % 500)}`;
          const r = await c.request(msg);
          expect(r?.toString()).toBe(msg);
        }
      }),
    );
    for (const c of clients) c.close();
    expect(l.stats()).toMatchObject({ flows: 20, flowsOpened: 20, datagramsIn: 4000, datagramsOut: 4000, dropped: 0 });
  });

  test("a flow idle past the timeout is closed; the next datagram opens a new one and is answered", async () => {
    const udpChannels = () =>
      [...fwd.sessions].flatMap((s) => [...s.channels.values()]).filter((ch) => ch.dest.proto === "udp" && !ch.closed)
        .length;
    const before = udpChannels();
    const l = await listen({ idleMs: 150 });
    const c = await udpClient(l.port);
    expect((await c.request("one"))?.toString()).toBe("one");
    expect(udpChannels()).toBe(before + 1);
    await until(() => l.stats().flowsExpired === 1, "the idle flow to expire", 3000);
    expect(l.connections).toBe(0);
    // the forwarder closed its side of the expired flow too
    await until(() => udpChannels() === before, "the forwarder to close the expired flow", 2000);
    expect((await c.request("two"))?.toString()).toBe("two");
    expect(l.stats()).toMatchObject({ flowsOpened: 2, flowsExpired: 1, flows: 1 });
    expect(udpChannels()).toBe(before + 1);
    c.close();
  });

  test("past the flow cap the least recently used flow is evicted, and every client is still answered", async () => {
    const l = await listen({ maxFlows: 3 });
    const cs = await Promise.all(Array.from({ length: 5 }, () => udpClient(l.port)));
    for (const [k, c] of cs.entries()) expect((await c.request(`hello ${k}`))?.toString()).toBe(`hello ${k}`);
    expect(l.stats()).toMatchObject({ flows: 3, flowsOpened: 5, flowsEvicted: 2 });
    // the first client was evicted: its next datagram opens a flow again (evicting the oldest)
    expect((await cs[0]!.request("again"))?.toString()).toBe("again");
    expect(l.stats()).toMatchObject({ flows: 3, flowsOpened: 6, flowsEvicted: 3 });
    for (const c of cs) c.close();
  });

  test("a target that never answers does not hold up other flows", async () => {
    const dead = dgram.createSocket("udp4"); // bound, never answers
    await new Promise<void>((r) => dead.bind(0, "127.0.0.1", () => r()));
    const silent = await listen({ targetPort: dead.address().port });
    const live = await listen();
    const s = await udpClient(silent.port);
    const c = await udpClient(live.port);
    for (let i = 0; i < 2000; i++) s.send(Buffer.alloc(1400, i & 0xff));
    for (let i = 0; i < 50; i++) expect((await c.request(`live ${i}`))?.toString()).toBe(`live ${i}`);
    expect(await s.next(100)).toBeNull();
    s.close();
    c.close();
    dead.close();
  });

  test("with a plain vpnkit peer (no extensions, 64 KiB windows): one channel per flow, datagrams whole", async () => {
    const plainFwd = startForwarder({
      listen: parseTransportUrl(`unix://${join(dir, "plain.sock")}`, "listen"),
      policy: createDialPolicy({ allow: ["127.0.0.1/32"] }),
      log: quiet,
      pipe: { plain: true },
    });
    const plainRelay = createRelayClient({ url: parseTransportUrl(plainFwd.address, "connect"), log: quiet });
    try {
      const s = await plainRelay.session(5000);
      expect(s.describePeer()).toMatch(/plain vpnkit peer/);
      const l = openUdpListener(
        { hostIp: "127.0.0.1", hostPort: 0, targetIp: "127.0.0.1", targetPort: echoPort, proto: "udp" },
        plainRelay,
        { log: quiet, pipeWaitMs: 2000 },
      );
      listeners.push(l);
      await l.ready;
      const cs = await Promise.all([udpClient(l.port), udpClient(l.port)]);
      for (const n of [0, 1472, 65507]) {
        for (const [k, c] of cs.entries()) {
          const payload = Buffer.alloc(n, k + 1);
          expect((await c.request(payload))?.equals(payload)).toBe(true);
        }
      }
      expect(l.stats()).toMatchObject({ flows: 2, datagramsIn: 6, datagramsOut: 6 });
      for (const c of cs) c.close();
    } finally {
      plainRelay.close();
      plainFwd.close();
    }
  });

  test("pipe down: datagrams wait --pipe-wait, then the flow is dropped with one log line; it works again once the pipe is back", async () => {
    const lines: string[] = [];
    const log = createConsola({ level: 3, reporters: [{ log: (l) => void lines.push(l.args.join(" ")) }] });
    const path = join(dir, "later.sock");
    const laterRelay = createRelayClient({
      url: parseTransportUrl(`unix://${path}`, "connect"),
      log: quiet,
      backoffMinMs: 20,
      backoffMaxMs: 50,
    });
    const l = openUdpListener(
      { hostIp: "127.0.0.1", hostPort: 0, targetIp: "127.0.0.1", targetPort: echoPort, proto: "udp" },
      laterRelay,
      { log, pipeWaitMs: 100 },
    );
    listeners.push(l);
    await l.ready;
    const c = await udpClient(l.port);
    for (let i = 0; i < 3; i++) c.send(`lost ${i}`);
    await until(() => l.stats().flowsFailed === 1, "the flow to fail", 2000);
    expect(await c.next(50)).toBeNull();
    expect(lines.filter((x) => /dropped: the pipe to unix:.*later\.sock is down/.test(x)).length).toBe(1);
    const later = startForwarder({
      listen: parseTransportUrl(`unix://${path}`, "listen"),
      policy: createDialPolicy({ allow: ["127.0.0.1/32"] }),
      log: quiet,
    });
    try {
      expect((await c.request("back", 3000))?.toString()).toBe("back");
    } finally {
      c.close();
      laterRelay.close();
      later.close();
    }
  });

  test("binds are exact and exclusive: 0.0.0.0 and :: are two sockets; a taken port is an error naming the address", async () => {
    const v4 = await listen({ hostIp: "0.0.0.0" });
    const m = (hostIp: string) => ({
      hostIp,
      hostPort: v4.port,
      targetIp: "127.0.0.1",
      targetPort: echoPort,
      proto: "udp" as const,
    });
    const v6 = openUdpListener(m("::"), relay, { log: quiet, pipeWaitMs: 100 });
    listeners.push(v6);
    await v6.ready; // IPV6_V6ONLY: "::" does not take the IPv4 side
    const again = openUdpListener(m("127.0.0.1"), relay, { log: quiet, pipeWaitMs: 100 });
    await expect(again.ready).rejects.toThrow(
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${v4.port}: the address is already in use`),
    );
    await again.close(); // closing a listener that never bound is harmless
    const nowhere = openUdpListener({ ...m("192.0.2.77"), hostPort: 0 }, relay, { log: quiet, pipeWaitMs: 100 });
    await expect(nowhere.ready).rejects.toThrow(
      /cannot listen on 192\.0\.2\.77:0: the address is not assigned to any interface of this host/,
    );
    for (const host of ["127.0.0.1", "::1"]) {
      const c = await udpClient(v4.port, host);
      expect((await c.request(`to ${host}`))?.toString()).toBe(`to ${host}`);
      c.close();
    }
  });
});
