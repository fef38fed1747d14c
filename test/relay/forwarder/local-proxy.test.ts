/**
 * The one-hop proxy that `edgeport docker-proxy` runs inside the VM, on real loopback sockets:
 * bytes with checksums, half-close both ways, resets both ways, a failed dial, backpressure from a
 * stalled destination, a socket handed over as a descriptor (newer dockerd's -use-listen-fd), and
 * UDP flows with their idle timeout.
 */
import { afterEach, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import type { Socket, TCPSocketListener } from "bun";
import { type LocalProxy, startLocalProxy } from "../../../src/relay/forwarder/local-proxy.ts";
import { prngStream } from "../../e2e/fixtures/prng.ts";
import { boundSocket, closeFd, dupFd } from "../../helpers/bound-socket.ts";
import { connectClient, endingOf, freePortRange, sha256, streamSha } from "../../helpers/tcp-client.ts";
import { udpClient } from "../../helpers/udp-client.ts";
import { until } from "../../helpers/until.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Echo {
  out: Uint8Array[];
  ended: boolean;
  /** paused because its own writes backed up (not the test's pause) */
  full: boolean;
}

/** Echoes with backpressure; shuts its side down once the client's FIN came and all is echoed. */
function echoServer(
  port: number,
  o: { paused?: { sockets: Socket<Echo>[] }; resetOnData?: boolean; closes?: (string | null)[] } = {},
): TCPSocketListener<Echo> {
  const flush = (s: Socket<Echo>) => {
    while (s.data.out.length) {
      const d = s.data.out[0]!;
      const n = s.write(d);
      if (n < 0) return;
      if (n < d.length) {
        s.data.out[0] = d.subarray(n);
        return;
      }
      s.data.out.shift();
    }
    // drain also fires on a socket the test paused: only a pause of our own is undone here
    if (s.data.full) {
      s.data.full = false;
      s.resume();
    }
    if (s.data.ended) s.shutdown();
  };
  const l = Bun.listen<Echo>({
    hostname: "127.0.0.1",
    port,
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = { out: [], ended: false, full: false };
        if (o.paused) {
          s.pause();
          o.paused.sockets.push(s);
        }
      },
      data(s, d) {
        if (o.resetOnData) return void s.terminate();
        s.data.out.push(d);
        flush(s);
        if (s.data.out.length) {
          s.data.full = true;
          s.pause();
        }
      },
      drain: flush,
      end(s) {
        s.data.ended = true;
        if (!s.data.out.length) s.shutdown();
      },
      close(_s, err) {
        o.closes?.push(err ? ((err as { code?: string }).code ?? err.message) : null);
      },
      error() {},
    },
  });
  cleanups.push(() => l.stop(true));
  return l;
}

async function proxy(
  o: Partial<Parameters<typeof startLocalProxy>[0]> & { port: number; targetPort: number },
): Promise<LocalProxy> {
  const p = await startLocalProxy({ proto: "tcp", host: "127.0.0.1", targetHost: "127.0.0.1", ...o });
  cleanups.push(() => p.close());
  return p;
}

describe("local proxy, TCP", () => {
  test("16 MiB each way with a checksum; the client's half-close reaches the server and the server's comes back", async () => {
    const base = freePortRange(2);
    echoServer(base + 1);
    const p = await proxy({ port: base, targetPort: base + 1 });
    const c = await connectClient(base, "127.0.0.1", { keepText: false });
    const total = 16 << 20;
    await c.writeStream(prngStream(7), total);
    c.socket.shutdown(); // half-close: the echo server answers its FIN once all is echoed
    expect(await c.eof).toBeNull();
    expect(c.received).toBe(total);
    expect(c.sha256()).toBe(streamSha(prngStream(7), total));
    expect(await c.closed).toBeNull();
    await until(() => p.open === 0, "both sockets of the connection to be let go");
  });

  test("the server keeps sending after the client's half-close", async () => {
    const base = freePortRange(2);
    const l = Bun.listen({
      hostname: "127.0.0.1",
      port: base + 1,
      allowHalfOpen: true,
      socket: {
        data() {},
        end(s) {
          s.write("answer after your FIN");
          s.shutdown();
        },
      },
    });
    cleanups.push(() => l.stop(true));
    await proxy({ port: base, targetPort: base + 1 });
    const c = await connectClient(base);
    await c.write(new TextEncoder().encode("question"));
    c.socket.shutdown();
    expect(await c.closed).toBeNull();
    expect(c.text()).toBe("answer after your FIN");
  });

  test("resets travel both ways; a destination that refuses resets the client", async () => {
    const base = freePortRange(4);
    // the server resets: the client sees a reset, not a clean end
    echoServer(base + 1, { resetOnData: true });
    await proxy({ port: base, targetPort: base + 1 });
    expect(await endingOf(base, "127.0.0.1", "x")).toBe("ECONNRESET");
    // the client resets: the server sees a reset
    const closes: (string | null)[] = [];
    echoServer(base + 3, { closes });
    await proxy({ port: base + 2, targetPort: base + 3 });
    const c = await connectClient(base + 2);
    await c.write(new TextEncoder().encode("hello"));
    await until(() => c.received === 5, "the echo");
    c.socket.terminate();
    await until(() => closes.length === 1, "the server to see the connection end");
    expect(closes[0]).toBe("ECONNRESET");
    // nothing listens behind this one
    const dead = freePortRange(2);
    await proxy({ port: dead, targetPort: dead + 1 });
    expect(await endingOf(dead)).toBe("ECONNRESET");
  });

  test("a stalled destination holds the client back (backpressure), and then everything arrives", async () => {
    const base = freePortRange(2);
    const paused = { sockets: [] as Socket<Echo>[] };
    echoServer(base + 1, { paused });
    await proxy({ port: base, targetPort: base + 1 });
    const c = await connectClient(base, "127.0.0.1", { keepText: false });
    const total = 64 << 20;
    let sent = 0;
    const gen = prngStream(11);
    const writing = (async () => {
      for (; sent < total; sent += 256 * 1024) await c.write(gen(256 * 1024));
    })();
    // held back: no write completes between two looks 250 ms apart (without backpressure all 64 MiB
    // would be written and the count would stop at the total)
    let last = -1;
    const stalled = () => {
      const same = sent === last;
      last = sent;
      return same;
    };
    await until(stalled, "the writer to be held back", 10_000, 250);
    // kernel buffers on three sockets and the proxy's stream buffers: a few MiB, not 64
    expect(sent).toBeLessThan(24 << 20);
    await until(() => paused.sockets.length === 1, "the server's socket");
    paused.sockets[0]!.resume();
    await writing;
    c.socket.shutdown();
    expect(await c.eof).toBeNull();
    expect(c.received).toBe(total);
    expect(c.sha256()).toBe(streamSha(prngStream(11), total));
  });

  test("a socket handed over as a descriptor (-use-listen-fd) is served, and closed with the proxy", async () => {
    const base = freePortRange(2);
    echoServer(base + 1);
    const p = await startLocalProxy({
      proto: "tcp",
      host: "127.0.0.1",
      port: base,
      fd: boundSocket("tcp", base),
      targetHost: "127.0.0.1",
      targetPort: base + 1,
    });
    const c = await connectClient(base);
    await c.write(new TextEncoder().encode("through fd 4"));
    await until(() => c.received === 12, "the echo");
    expect(c.text()).toBe("through fd 4");
    expect(p.open).toBe(2);
    await p.close();
    expect(await c.closed).toBe("ECONNRESET");
    expect(await endingOf(base).catch((e: { code?: string }) => e.code)).toBe("ECONNREFUSED");
  });

  test("IPv6: dockerd's -host-ip :: proxy listens on IPv6 only and relays to an IPv4 container", async () => {
    const base = freePortRange(2);
    echoServer(base + 1);
    await proxy({ host: "::", port: base, targetPort: base + 1 });
    const c = await connectClient(base, "::1");
    await c.write(new TextEncoder().encode("over ::1"));
    await until(() => c.received === 8, "the echo");
    expect(c.text()).toBe("over ::1");
    // IPv6 only: the same port on IPv4 is not taken by it (dockerd runs a second proxy for 0.0.0.0)
    const v4 = Bun.listen({ hostname: "0.0.0.0", port: base, exclusive: true, socket: { data() {} } });
    v4.stop(true);
  });

  test("an address that is taken is an error naming it", async () => {
    const base = freePortRange(2);
    const held = Bun.listen({ hostname: "127.0.0.1", port: base, socket: { data() {} } });
    cleanups.push(() => held.stop(true));
    await expect(
      startLocalProxy({ proto: "tcp", host: "127.0.0.1", port: base, targetHost: "127.0.0.1", targetPort: base + 1 }),
    ).rejects.toThrow(`cannot listen on 127.0.0.1:${base}/tcp in the VM: EADDRINUSE`);
  });
});

describe("local proxy, UDP", () => {
  function udpEcho(port: number): Promise<dgram.Socket> {
    const s = dgram.createSocket("udp4");
    s.on("message", (m, r) => s.send(m, r.port, r.address));
    cleanups.push(() => s.close());
    return new Promise((resolve) => s.bind(port, "127.0.0.1", () => resolve(s)));
  }

  for (const handed of [false, true]) {
    test(`each client gets its own replies; an idle flow is forgotten and the next datagram starts another${handed ? " (socket handed over as fd 4)" : ""}`, async () => {
      const base = freePortRange(2);
      await udpEcho(base + 1);
      // handed over as dockerd does it: dockerd keeps its own copy open until the proxy has reported
      const held = handed ? boundSocket("udp", base) : undefined;
      const p = await startLocalProxy({
        proto: "udp",
        host: "127.0.0.1",
        port: base,
        fd: held === undefined ? undefined : dupFd(held),
        targetHost: "127.0.0.1",
        targetPort: base + 1,
        udpIdleMs: 300,
      });
      if (held !== undefined) closeFd(held);
      cleanups.push(() => p.close());
      const a = await udpClient(base);
      const b = await udpClient(base);
      cleanups.push(() => {
        a.close();
        b.close();
      });
      for (let i = 0; i < 50; i++) {
        // both ask before either reads: a reply sent to the wrong client would show
        a.send(`a${i}`);
        b.send(`b${i}`);
        expect((await a.next())?.toString()).toBe(`a${i}`);
        expect((await b.next())?.toString()).toBe(`b${i}`);
      }
      const big = new Uint8Array(65507).fill(7);
      expect(sha256((await a.request(big))!)).toBe(sha256(big));
      expect(p.open).toBe(2);
      await until(() => p.open === 0, "the idle flows to end", 3000);
      expect((await a.request("again"))?.toString()).toBe("again");
      expect(p.open).toBe(1);
    });
  }

  test("past the flow cap the least recently active client is forgotten, and answered again when it comes back", async () => {
    const base = freePortRange(2);
    await udpEcho(base + 1);
    const p = await startLocalProxy({
      proto: "udp",
      host: "127.0.0.1",
      port: base,
      targetHost: "127.0.0.1",
      targetPort: base + 1,
      udpMaxFlows: 2,
    });
    cleanups.push(() => p.close());
    const clients = await Promise.all([0, 1, 2].map(() => udpClient(base)));
    cleanups.push(() => {
      for (const c of clients) c.close();
    });
    for (let round = 0; round < 3; round++) {
      for (const [i, c] of clients.entries()) {
        expect((await c.request(`${round}:${i}`))?.toString()).toBe(`${round}:${i}`);
        expect(p.open).toBeLessThanOrEqual(2);
      }
    }
  });
});
