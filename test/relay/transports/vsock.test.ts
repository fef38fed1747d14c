/**
 * AF_VSOCK and adopted fds. This machine has /dev/vsock with the virtio transport but no loopback
 * transport: listening works for real here, connecting reaches no peer. So listen and every error
 * path run on real AF_VSOCK sockets, and the adoption path (the same code that takes a vsock fd
 * from libc and hands it to Bun) carries the whole relay over AF_UNIX sockets made through libc.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TCPSocketListener } from "bun";
import { createConsola } from "consola";
import { openTcpListener } from "../../../src/publisher/tcp-listener.ts";
import { createDialPolicy } from "../../../src/relay/forwarder/dial-policy.ts";
import { startForwarder } from "../../../src/relay/forwarder/forwarder.ts";
import { createRelayClient } from "../../../src/relay/host/relay-client.ts";
import { listenPipes } from "../../../src/relay/transports/index.ts";
import { rawConnect, rawListen } from "../../../src/relay/transports/raw-socket.ts";
import { parseTransportUrl } from "../../../src/relay/transports/url.ts";
import { AF_VSOCK, sockaddrVm } from "../../../src/relay/transports/vsock.ts";
import { until } from "../../helpers/until.ts";

const quiet = createConsola({ level: -999 });
const dir = mkdtempSync(join(tmpdir(), "edgeport-vsock-"));
const fds = () => readdirSync("/proc/self/fd").length;
const AF_UNIX = 1;
/** struct sockaddr_un: family (u16) then the path, NUL-terminated */
const sockaddrUn = (path: string) => {
  const b = new Uint8Array(110);
  new DataView(b.buffer).setUint16(0, AF_UNIX, true);
  b.set(new TextEncoder().encode(path), 2);
  return b;
};
let echo: TCPSocketListener;

beforeAll(() => {
  echo = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      data(s, d) {
        s.write(d);
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

test("sockaddr_vm is laid out as the kernel reads it (golden bytes)", () => {
  expect([...sockaddrVm(3, 1024)]).toEqual([40, 0, 0, 0, 0, 4, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]);
  expect([...sockaddrVm(0xffffffff, 2)].slice(4, 12)).toEqual([2, 0, 0, 0, 255, 255, 255, 255]);
});

test("vsock://any:PORT listens on a real AF_VSOCK socket; close gives the fd back", () => {
  expect(existsSync("/dev/vsock")).toBe(true); // the machine this suite runs on has the virtio transport
  const before = fds();
  const l = listenPipes(parseTransportUrl("vsock://any:47011", "listen"), () => ({
    data() {},
    drain() {},
    closed() {},
  }));
  expect(l.address).toBe("vsock://any:47011");
  expect(fds()).toBe(before + 1);
  expect(() =>
    listenPipes(parseTransportUrl("vsock://any:47011", "listen"), () => ({ data() {}, drain() {}, closed() {} })),
  ).toThrow("cannot bind vsock://any:47011: EADDRINUSE");
  expect(fds()).toBe(before + 1); // the failed attempt's socket was closed
  l.close();
  expect(fds()).toBe(before);
});

test.each([
  // CID 2 is the host: nobody listens there on this port, so the transport resets at once
  ["vsock://2:47012", /cannot connect to vsock:\/\/2:47012: ECONNRESET/],
  // CID 3 is no VM here: the virtio transport has no such device
  ["vsock://3:47012", /cannot connect to vsock:\/\/3:47012: ENODEV/],
])("%s: the dial fails naming the errno, and leaves no fd behind", async (url, message) => {
  const before = fds();
  const relay = createRelayClient({ url: parseTransportUrl(url, "connect"), log: quiet, backoffMinMs: 60_000 });
  try {
    const err = await relay.session(1000).catch((e: Error) => e);
    expect((err as Error).message).toMatch(message);
    expect(relay.description).toBe(url);
    await expect(rawConnect(AF_VSOCK, sockaddrVm(Number(url.split(/[/:]+/)[1]), 47012), url, 1000)).rejects.toThrow(
      message,
    );
  } finally {
    relay.close();
  }
  await until(() => fds() === before, "the fds back at their baseline");
});

test("a peer that never answers is given up on within the timeout, without blocking the event loop", async () => {
  const before = fds();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const t0 = performance.now();
  // CID 1 (the local hypervisor) never answers here: the kernel's own timeout (2 s) or ours
  await expect(rawConnect(AF_VSOCK, sockaddrVm(1, 47013), "vsock://1:47013", 500)).rejects.toThrow(
    /cannot connect to vsock:\/\/1:47013: ETIMEDOUT/,
  );
  clearInterval(timer);
  const ms = performance.now() - t0;
  expect(ms).toBeLessThan(2500);
  expect(ticks).toBeGreaterThan(ms / 10 / 4); // timers kept firing meanwhile
  expect(fds()).toBe(before);
});

test("the whole relay over adopted fds (AF_UNIX made through libc, as vsock's are): 16 MiB each way, half-close", async () => {
  const before = fds();
  const path = join(dir, "adopted.sock");
  const lfd = rawListen(AF_UNIX, sockaddrUn(path), `unix://${path}`);
  const fwd = startForwarder({
    listen: parseTransportUrl(`fd://${lfd}`, "listen"),
    policy: createDialPolicy({ allow: ["127.0.0.1/32"] }),
    log: quiet,
  });
  const cfd = await rawConnect(AF_UNIX, sockaddrUn(path), `unix://${path}`, 1000);
  const relay = createRelayClient({ url: parseTransportUrl(`fd://${cfd}`, "connect"), log: quiet });
  const listener = openTcpListener(
    { hostIp: "127.0.0.1", hostPort: 0, targetIp: "127.0.0.1", targetPort: echo.port, proto: "tcp" },
    relay,
    { log: quiet, pipeWaitMs: 2000 },
  );
  try {
    await relay.session(5000);
    const payload = new Uint8Array(16 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 4096) payload[i] = (i / 4096) & 255;
    const want = createHash("sha256").update(payload).digest("hex");
    const got = createHash("sha256");
    let received = 0;
    let fin = false;
    const { promise: done, resolve } = Promise.withResolvers<void>();
    let offset = 0;
    await Bun.connect({
      hostname: "127.0.0.1",
      port: listener.port,
      allowHalfOpen: true,
      socket: {
        open(sock) {
          offset += sock.write(payload);
          if (offset === payload.length) sock.shutdown();
        },
        drain(sock) {
          if (offset >= payload.length) return;
          offset += sock.write(payload.subarray(offset));
          if (offset === payload.length) sock.shutdown();
        },
        data(_sock, d) {
          got.update(d);
          received += d.length;
        },
        end() {
          fin = true;
        },
        close(_sock, err) {
          if (!err) fin = true; // a clean close after our FIN: the server's FIN came back
          resolve();
        },
      },
    });
    await done;
    // every byte came back after our FIN went out (we shut down once the last byte was written): half-close
    expect(received).toBe(payload.length);
    expect(got.digest("hex")).toBe(want);
    expect(fin).toBe(true);
  } finally {
    await listener.close(100);
    relay.close();
    fwd.close();
  }
  await until(() => fds() <= before, `the fds back at their baseline (${before})`);
});
