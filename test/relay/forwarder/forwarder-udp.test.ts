/**
 * The forwarder's UDP open path on real sockets (issue 16, defect 5): a flow the kernel refuses to
 * open (a broadcast address: EACCES, thrown synchronously by Bun.udpSocket) ends in an open error
 * and a Close, and an ICMP error on an open flow is a debug line, not a thrown TypeError.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import dgram from "node:dgram";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
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

const dir = mkdtempSync(join(tmpdir(), "edgeport-fwd-udp-"));
const quiet = createConsola({ level: -999 });
const lines: string[] = [];
const capture = createConsola({ level: 4, reporters: [{ log: (l) => void lines.push(l.args.join(" ")) }] });
let fwd: Forwarder;
let relay: RelayClient;
const listeners: UdpListener[] = [];
const fds = () => readdirSync("/proc/self/fd").length;
const udpChannels = () =>
  [...fwd.sessions].flatMap((s) => [...s.channels.values()]).filter((ch) => ch.dest.proto === "udp" && !ch.closed)
    .length;

/** A UDP port nobody listens on (bound once, then closed). */
async function closedUdpPort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function listen(targetIp: string, targetPort: number): Promise<UdpListener> {
  const l = openUdpListener({ hostIp: "127.0.0.1", hostPort: 0, targetIp, targetPort, proto: "udp" }, relay, {
    log: capture,
    pipeWaitMs: 2000,
  });
  listeners.push(l);
  await l.ready;
  return l;
}

beforeAll(async () => {
  fwd = startForwarder({
    listen: parseTransportUrl(`unix://${join(dir, "fwd.sock")}`, "listen"),
    // the broadcast address of lo's 127.0.0.0/8, named exactly so the policy lets it through to the kernel
    policy: createDialPolicy({ allow: ["127.0.0.1/32", "127.255.255.255/32"] }),
    log: capture,
  });
  relay = createRelayClient({ url: parseTransportUrl(fwd.address, "connect"), log: quiet });
  await relay.session(5000);
});
afterAll(async () => {
  for (const l of listeners) await l.close();
  relay.close();
  fwd.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a UDP open to a broadcast address is an open error and a Close, with the errno; fds back to baseline", async () => {
  const l = await listen("127.255.255.255", 9);
  const c = await udpClient(l.port);
  const before = fds();
  for (let i = 0; i < 50; i++) {
    const fresh = await udpClient(l.port); // a new source port: a new flow, a new open
    fresh.send(`to the broadcast address ${i}`);
    await until(() => l.stats().flowsFailed === i + 1, `flow ${i} to fail`, 1000);
    fresh.close();
  }
  expect(l.connections).toBe(0);
  expect(udpChannels()).toBe(0);
  expect(lines.filter((x) => /forbidden: udp connect 127\.255\.255\.255:9: EACCES/.test(x)).length).toBe(1);
  expect(lines.some((x) => /udp\/127\.255\.255\.255:9 failed: udp connect 127\.255\.255\.255:9: EACCES/.test(x))).toBe(
    true,
  );
  await until(() => fds() <= before, "fds back to baseline", 2000);
  c.close();
});

test("an ICMP port unreachable on an open flow is logged at debug and the flow stays open", async () => {
  const closed = await closedUdpPort();
  const l = await listen("127.0.0.1", closed);
  const c = await udpClient(l.port);
  c.send("nobody home");
  await until(() => udpChannels() === 1, "the flow to open", 1000);
  c.send("still nobody"); // the first datagram's ICMP error is reported on this socket
  await until(() => lines.some((x) => /udp\/127\.0\.0\.1:\d+: ECONNREFUSED/.test(x)), "the ICMP error's line", 2000);
  expect(udpChannels()).toBe(1);
  expect(l.stats()).toMatchObject({ flows: 1, flowsFailed: 0 });
  c.close();
});
