/**
 * The whole relay in one process over real sockets: a forwarder on a unix or tcp transport, the
 * host's relay client and a TCP listener, and a loopback echo server as the destination.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TCPSocketListener } from "bun";
import { createConsola } from "consola";
import { openTcpListener, type TcpListener } from "../../../src/publisher/tcp-listener.ts";
import { createDialPolicy } from "../../../src/relay/forwarder/dial-policy.ts";
import { type Forwarder, startForwarder } from "../../../src/relay/forwarder/forwarder.ts";
import { createRelayClient, type RelayClient } from "../../../src/relay/host/relay-client.ts";
import { parseTransportUrl } from "../../../src/relay/transports/url.ts";
import { until } from "../../helpers/memory-pipe.ts";

const quiet = createConsola({ level: -999 });
const dir = mkdtempSync(join(tmpdir(), "edgeport-transports-"));
let echo: TCPSocketListener;

beforeAll(() => {
  // echo server with half-close: echoes, and FINs after the client's FIN
  echo = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      data(s, d) {
        if (s.write(d) !== d.length) throw new Error("test echo server is not meant for bulk data");
      },
      end(s) {
        s.shutdown();
      },
    },
  });
});
afterAll(() => {
  echo.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

async function roundTrip(port: number, payload: string): Promise<{ reply: string; fin: boolean }> {
  let reply = "";
  let fin = false;
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const s = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    allowHalfOpen: true,
    socket: {
      data(_s, d) {
        reply += d.toString();
      },
      end() {
        fin = true;
      },
      close(_s, err) {
        if (err) reject(err);
        else {
          fin = true;
          resolve();
        }
      },
    },
  });
  s.write(payload);
  s.shutdown();
  await promise;
  return { reply, fin };
}

describe.each([
  ["unix", () => `unix://${join(dir, "fwd.sock")}`],
  ["tcp", () => "tcp://127.0.0.1:0"],
])("%s transport", (_kind, listenUrl) => {
  let fwd: Forwarder;
  let relay: RelayClient;
  let listener: TcpListener;

  beforeAll(async () => {
    fwd = startForwarder({
      listen: parseTransportUrl(listenUrl(), "listen"),
      policy: createDialPolicy({ allow: ["127.0.0.1/32"] }),
      log: quiet,
    });
    relay = createRelayClient({ url: parseTransportUrl(fwd.address, "connect"), log: quiet });
    await relay.session(5000);
    listener = openTcpListener(
      { hostIp: "127.0.0.1", hostPort: 0, targetIp: "127.0.0.1", targetPort: echo.port, proto: "tcp" },
      relay,
      { log: quiet, pipeWaitMs: 2000 },
    );
  });
  afterAll(async () => {
    await listener.close(100);
    relay.close();
    fwd.close();
  });

  test("a connection is echoed, half-closed both ways", async () => {
    const r = await roundTrip(listener.port, "hello through the pipe");
    expect(r).toEqual({ reply: "hello through the pipe", fin: true });
  });

  test("50 parallel connections each get their own bytes back", async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => roundTrip(listener.port, `connection ${i} `.repeat(50))),
    );
    for (const [i, r] of results.entries())
      expect(createHash("sha256").update(r.reply).digest("hex")).toBe(
        createHash("sha256").update(`connection ${i} `.repeat(50)).digest("hex"),
      );
  });

  test("the pipe comes back after the forwarder restarts, listener untouched", async () => {
    const url = fwd.address;
    fwd.close();
    await until(() => relay.current === null, "host notices the pipe is gone");
    fwd = startForwarder({
      listen: parseTransportUrl(url, "listen"),
      policy: createDialPolicy({ allow: ["127.0.0.1/32"] }),
      log: quiet,
    });
    const t0 = Date.now();
    const r = await roundTrip(listener.port, "after restart");
    expect(r.reply).toBe("after restart");
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe("unix destinations", () => {
  test("an explicitly allowed unix socket in the VM is dialled; another path is refused", async () => {
    const target = join(dir, "app.sock");
    const app = Bun.listen({
      unix: target,
      socket: {
        data(s, d) {
          s.write(d);
          s.end();
        },
      },
    });
    const fwd = startForwarder({
      listen: parseTransportUrl(`unix://${join(dir, "fwd-unix.sock")}`, "listen"),
      policy: createDialPolicy({ allow: [`unix://${target}`] }),
      log: quiet,
    });
    const relay = createRelayClient({ url: parseTransportUrl(fwd.address, "connect"), log: quiet });
    try {
      const s = await relay.session(5000);
      const { FakeEndpoint } = await import("../../helpers/memory-pipe.ts");
      const ok = new FakeEndpoint();
      s.open({ proto: "unix", path: target }, ok).localData(new TextEncoder().encode("over a unix socket"));
      await until(() => ok.text() === "over a unix socket", "the echo");
      const refused = new FakeEndpoint();
      let why: string | null = null;
      s.open({ proto: "unix", path: "/var/run/docker.sock" }, refused).onEnded = (r) => (why = r);
      await until(() => refused.resetCalled, "the refusal");
      expect(why as unknown as string).toContain(
        "forbidden: Unix socket destinations are refused unless allowed with --allow unix:///var/run/docker.sock",
      );
    } finally {
      relay.close();
      fwd.close();
      app.stop(true);
    }
  });
});

test("both ends of a unix pipe get 4 MiB socket buffers (the kernel's 208 KiB is less than a frame)", async () => {
  const path = join(dir, "bufs", "fwd.sock");
  const fwd = startForwarder({
    listen: parseTransportUrl(`unix://${path}`, "listen"),
    policy: createDialPolicy({ allow: [] }),
    log: quiet,
  });
  const relay = createRelayClient({ url: parseTransportUrl(`unix://${path}`, "connect"), log: quiet });
  try {
    await relay.session(5000);
    // ss lists the accepted end under the socket's path and the dialling end by its peer's inode
    const lines = Bun.spawnSync(["ss", "-xmHn"]).stdout.toString().split("\n");
    const accepted = lines.find((l) => l.includes(path) && l.startsWith("u_str") && l.includes("ESTAB"));
    expect(accepted).toBeDefined();
    const [, , , , , inode, , peer] = accepted!.trim().split(/\s+/);
    const dialled = lines.find((l) => {
      const f = l.trim().split(/\s+/);
      return f[5] === peer && f[7] === inode;
    });
    expect(dialled).toBeDefined();
    for (const l of [accepted!, dialled!]) {
      expect(l).toMatch(/rb8388608/);
      expect(l).toMatch(/tb8388608/);
    }
  } finally {
    relay.close();
    fwd.close();
  }
});

test("a unix pipe socket is owner-only, in a 0700 directory", async () => {
  const { statSync } = await import("node:fs");
  const path = join(dir, "private", "fwd.sock");
  const fwd = startForwarder({
    listen: parseTransportUrl(`unix://${path}`, "listen"),
    policy: createDialPolicy({ allow: [] }),
    log: quiet,
  });
  try {
    expect(statSync(join(dir, "private")).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o077).toBe(0); // owner only, from the moment it exists
  } finally {
    fwd.close();
  }
});

test("the host keeps redialling a peer that hangs up at once, and a waiting client is told why", async () => {
  // regression guard: a pipe that died before dialPipe() returned used to leave nothing scheduled
  const path = join(dir, "hangup.sock");
  let accepts = 0;
  const l = Bun.listen({
    unix: path,
    socket: {
      open(s) {
        accepts++;
        s.terminate();
      },
      data() {},
    },
  });
  const relay = createRelayClient({
    url: parseTransportUrl(`unix://${path}`, "connect"),
    log: quiet,
    backoffMinMs: 20,
    backoffMaxMs: 100,
  });
  try {
    await until(() => accepts >= 5, "five dial attempts", 3000);
    await expect(relay.session(200)).rejects.toThrow(/the pipe to unix:.*hangup\.sock is down \(.*\); waited 200 ms/);
  } finally {
    relay.close();
    l.stop(true);
  }
});
