/**
 * The compiled binary on the transports whose sockets it adopts: `forwarder --listen fd://3` with a
 * listening AF_UNIX socket passed as fd 3 (systemd socket activation; the same adoption vsock uses),
 * carrying a relay end to end; `--listen vsock://any:PORT` on this machine's real AF_VSOCK; and a
 * host side that dials a vsock CID with nobody behind it (the errno in the log, the port still served).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rawListen } from "../../src/relay/transports/raw-socket.ts";
import { EDGEPORT, ensureBinary, hasLog, spawnHost, stopProcess, until, waitForListener } from "../helpers/e2e.ts";
import { freePortRange } from "../helpers/tcp-client.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-vsock-e2e-"));
const procs: Bun.Subprocess[] = [];
const AF_UNIX = 1;
const sockaddrUn = (path: string) => {
  const b = new Uint8Array(110);
  new DataView(b.buffer).setUint16(0, AF_UNIX, true);
  b.set(new TextEncoder().encode(path), 2);
  return b;
};
let echo: Bun.TCPSocketListener<undefined>;

beforeAll(async () => {
  await ensureBinary();
  echo = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, d) {
        s.write(d);
      },
    },
  });
});
afterAll(async () => {
  for (const p of procs) await stopProcess(p);
  echo.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const spawnLogged = (args: string[], log: string, extraFds: number[] = []) => {
  const fd = openSync(log, "a");
  const p = Bun.spawn([EDGEPORT, ...args, "--log-format", "json", "--log-level", "debug"], {
    stdio: ["ignore", fd, fd, ...extraFds],
  });
  procs.push(p);
  return p;
};

test("forwarder --listen fd://3 serves the pipe on the socket it inherited", async () => {
  const path = join(dir, "activated.sock");
  const lfd = rawListen(AF_UNIX, sockaddrUn(path), `unix://${path}`);
  const flog = join(dir, "fwd-fd.log");
  spawnLogged(["forwarder", "--listen", "fd://3", "--allow", "127.0.0.1/32"], flog, [lfd]);
  await until(() => hasLog(flog, /listening on fd:\/\/3/), "the forwarder's listening line");
  const port = await freePortRange(1);
  const plog = join(dir, "pub-fd.log");
  procs.push(spawnHost(["publish", "--relay", `unix://${path}`, `127.0.0.1:${port}:127.0.0.1:${echo.port}`], plog));
  await waitForListener(port);
  let reply = "";
  const s = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d) {
        reply += d.toString();
      },
    },
  });
  s.write("through an inherited socket");
  await until(() => reply === "through an inherited socket", "the echo");
  s.end();
});

test("forwarder --listen vsock://any:PORT listens on AF_VSOCK; a second one on the port is refused, naming it", async () => {
  const log1 = join(dir, "fwd-vsock-1.log");
  const log2 = join(dir, "fwd-vsock-2.log");
  spawnLogged(["forwarder", "--listen", "vsock://any:47021", "--allow", "127.0.0.1/32"], log1);
  await until(() => hasLog(log1, /listening on vsock:\/\/any:47021/), "the first forwarder's listening line");
  const second = spawnLogged(["forwarder", "--listen", "vsock://any:47021", "--allow", "127.0.0.1/32"], log2);
  expect(await second.exited).not.toBe(0);
  expect(hasLog(log2, /cannot bind vsock:\/\/any:47021: EADDRINUSE/)).toBe(true);
});

test("the host side dialling a vsock CID with nobody behind it logs the errno and keeps its listener", async () => {
  const port = await freePortRange(1);
  const plog = join(dir, "pub-vsock.log");
  procs.push(spawnHost(["publish", "--relay", "vsock://2:47022", `127.0.0.1:${port}:127.0.0.1:${echo.port}`], plog));
  await until(() => hasLog(plog, /cannot connect to vsock:\/\/2:47022: ECONNRESET/), "the dial's errno in the log");
  await waitForListener(port);
});
