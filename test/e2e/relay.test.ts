/**
 * The relay end to end: the compiled binary on both sides, a real dockerd in a network namespace
 * playing the VM, containers from the offline busybox image. The host reaches the containers
 * only through edgeport (the test bed blackholes 172.16.0.0/12 in the root namespace).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { INDEX_HTML, startTestbed, type Testbed } from "../../scripts/testbed.ts";
import {
  EDGEPORT,
  echoOnce,
  ensureBinary,
  hasLog,
  rssKiB,
  spawnHost,
  stopProcess,
  until,
  waitForListener,
  writeToken,
} from "../helpers/e2e.ts";
import { connectClient, endingOf, freePortRange, sha256, streamSha } from "../helpers/tcp-client.ts";
import { prngStream } from "./fixtures/prng.ts";

const MiB = 1 << 20;
let tb: Testbed;
let srvIp: string;
let webIp: string;
let fwd: Bun.Subprocess;
let pub: Bun.Subprocess;
let fwdSock: string;
let fwdLog: string;
let pubLog: string;
let token: string;
let base: number; // host ports base+0 .. base+8 -> test server 7001..7009
let web: number; // host port -> web container :80 (both loopbacks)
const port = (srvPort: number) => base + (srvPort - 7001);

function startForwarder(args: string[] = []): Bun.Subprocess {
  return tb.spawnInVm(
    [
      EDGEPORT,
      "forwarder",
      "--listen",
      `unix://${fwdSock}`,
      "--allow",
      "172.17.0.0/16",
      "--token-file",
      token,
      "--log-format",
      "json",
      "--log-level",
      "debug",
      ...args,
    ],
    { logFile: fwdLog },
  );
}

beforeAll(async () => {
  await ensureBinary();
  tb = await startTestbed();
  const [srv, w] = await Promise.all([
    tb.runTestServer("testsrv"),
    tb.runContainer({ name: "web", args: ["httpd", "-f", "-p", "80", "-h", "/www"] }),
  ]);
  srvIp = srv.ip;
  webIp = w.ip;
  fwdSock = join(tb.dir, "edgeport", "fwd.sock");
  fwdLog = join(tb.dir, "forwarder.log");
  pubLog = join(tb.dir, "publish.log");
  token = writeToken(join(tb.dir, "token"), "correct horse battery staple");
  base = freePortRange(50); // base+0..8 the test server, +9 web, +20.. +45 the tests' own extra listeners
  web = base + 9;
  fwd = startForwarder();
  await until(() => hasLog(fwdLog, /^listening on/), "the forwarder to listen");
  pub = spawnHost(
    [
      "publish",
      "--relay",
      `unix://${fwdSock}`,
      "--token-file",
      token,
      `127.0.0.1:${base}-${base + 8}:${srvIp}:7001-7009`,
      `${web}:${webIp}:80`,
    ],
    pubLog,
  );
  await waitForListener(web);
  await waitForListener(web, "::1");
  await waitForListener(port(7001));
}, 120_000);

afterAll(async () => {
  await stopProcess(pub);
  await stopProcess(fwd);
  await tb?.stop();
}, 60_000);

describe("edgeport publish through the forwarder", () => {
  test("curl on the host reaches the web container, on 127.0.0.1 and ::1", () => {
    for (const url of [`http://127.0.0.1:${web}/`, `http://[::1]:${web}/`]) {
      const r = Bun.spawnSync(["curl", "-sS", "-m", "5", url]);
      expect(r.stderr.toString()).toBe("");
      expect(r.stdout.toString()).toBe(INDEX_HTML);
    }
  });

  test("100 MiB host -> container: the sha256 the container computed equals ours", async () => {
    const total = 100 * MiB;
    const c = await connectClient(port(7002));
    await c.writeStream(prngStream(11), total);
    c.socket.shutdown();
    expect(await c.closed).toBeNull();
    expect(c.text()).toBe(`${streamSha(prngStream(11), total)} ${total}\n`);
  });

  test("100 MiB container -> host: byte-exact, then FIN", async () => {
    const total = 100 * MiB;
    const c = await connectClient(port(7003), "127.0.0.1", { keepText: false });
    await c.write(new TextEncoder().encode(`${total} 23\n`));
    expect(await c.eof).toBeNull(); // the server's FIN; our side is still open
    c.socket.end();
    expect(await c.closed).toBeNull();
    expect(c.received).toBe(total);
    expect(c.sha256()).toBe(streamSha(prngStream(23), total));
  });

  test("half-close: the client sends and shuts down its write side; the server answers after EOF", async () => {
    const msg = "every byte before the FIN, and the answer after it";
    const c = await connectClient(port(7002));
    await c.write(new TextEncoder().encode(msg));
    c.socket.shutdown();
    expect(await c.closed).toBeNull();
    expect(c.text()).toBe(`${sha256(msg)} ${msg.length}\n`);
    // and an echo that keeps flowing after our FIN
    const e = await connectClient(port(7001));
    const big = prngStream(5)(3 * MiB);
    await e.write(big);
    e.socket.shutdown();
    expect(await e.closed).toBeNull();
    expect(e.sha256()).toBe(sha256(big));
  });

  test("a client's RST reaches the container as a reset; a container's RST reaches the client", async () => {
    const c = await connectClient(port(7001));
    await c.write(new TextEncoder().encode("x"));
    await until(() => c.received === 1, "the echo");
    c.socket.terminate();
    await until(
      async () => {
        const ev = await connectClient(port(7009));
        ev.socket.shutdown();
        await ev.closed;
        return ev.text().includes("7001 reset");
      },
      "the test server to see the reset",
      5000,
    );

    const r = await connectClient(port(7004));
    await r.write(new TextEncoder().encode("x"));
    expect(await r.closed).toBe("ECONNRESET");
  });

  test("a refused port resets the client within 1 s, and the reason is logged", async () => {
    const t0 = performance.now();
    expect(await endingOf(port(7006), "127.0.0.1", "hello?")).toBe("ECONNRESET"); // nothing listens on 7006 in the container
    expect(performance.now() - t0).toBeLessThan(1000);
    await until(() => hasLog(pubLog, /refused: connect .*:7006: ECONNREFUSED/), "the host log line");
  });

  test("200 concurrent connections, each checksummed", async () => {
    const size = 256 * 1024;
    const runs = Array.from({ length: 200 }, async (_, i) => {
      if (i % 2 === 0) {
        const c = await connectClient(port(7002));
        await c.write(prngStream(1000 + i)(size));
        c.socket.shutdown();
        expect(await c.closed).toBeNull();
        return c.text() === `${streamSha(prngStream(1000 + i), size)} ${size}\n`;
      }
      const c = await connectClient(port(7003), "127.0.0.1", { keepText: false });
      await c.write(new TextEncoder().encode(`${size} ${2000 + i}\n`));
      expect(await c.eof).toBeNull();
      c.socket.end();
      return c.received === size && c.sha256() === streamSha(prngStream(2000 + i), size);
    });
    const ok = await Promise.all(runs);
    expect(ok.filter(Boolean).length).toBe(200);
  });

  test("a stalled reader on one channel does not stall another on the same pipe", async () => {
    const stalled = await connectClient(port(7003), "127.0.0.1", { keepText: false });
    await stalled.write(new TextEncoder().encode("0 99\n")); // an endless stream...
    stalled.socket.pause(); // ...that nobody reads
    await Bun.sleep(300); // let it fill every buffer up to the window
    const total = 32 * MiB;
    const t0 = performance.now();
    const c = await connectClient(port(7003), "127.0.0.1", { keepText: false });
    await c.write(new TextEncoder().encode(`${total} 31\n`));
    expect(await c.eof).toBeNull();
    c.socket.end();
    const ms = performance.now() - t0;
    expect(c.sha256()).toBe(streamSha(prngStream(31), total));
    expect(ms).toBeLessThan(10_000);
    // memory stays bounded on both sides while the stalled channel is still open
    expect(rssKiB(pub.pid) * 1024).toBeLessThan(300 * MiB);
    expect(rssKiB(fwd.pid) * 1024).toBeLessThan(300 * MiB);
    stalled.socket.terminate();
  });

  test("2000 short connections (echo, reset, refused mixed): file descriptors back to baseline on both sides", async () => {
    const { readdirSync } = await import("node:fs");
    const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
    const before = { pub: fds(pub.pid), fwd: fds(fwd.pid) };
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const kind = i % 4;
          const target = port(kind === 0 ? 7001 : kind === 1 ? 7004 : kind === 2 ? 7006 : 7009);
          let c: Awaited<ReturnType<typeof connectClient>>;
          try {
            c = await connectClient(target);
          } catch (e) {
            // the refused port's reset can beat the client's own view of the connect
            if (kind === 2 && (e as { code?: string }).code === "ECONNRESET") return;
            throw new Error(`round ${round} connection ${i} to ${target}: ${(e as Error).message}`);
          }
          if (kind === 0) {
            await c.write(new TextEncoder().encode("short"));
            c.socket.shutdown();
          } else if (kind === 1) await c.write(new TextEncoder().encode("x"));
          else if (kind === 3) c.socket.shutdown();
          else c.socket.terminate();
          await Promise.race([c.closed, Bun.sleep(5000)]);
          if (kind === 0) expect(c.text()).toBe("short");
        }),
      );
    }
    await until(() => fds(pub.pid) <= before.pub + 2 && fds(fwd.pid) <= before.fwd + 2, "fds back to baseline", 10_000);
  });

  test("an Open to the VM's loopback is refused and logged", async () => {
    const p = base + 20;
    const extraLog = join(tb.dir, "publish-loopback.log");
    const extra = spawnHost(
      ["publish", "--relay", `unix://${fwdSock}`, "--token-file", token, `127.0.0.1:${p}:127.0.0.1:7001`],
      extraLog,
    );
    try {
      await waitForListener(p);
      expect(await endingOf(p)).toBe("ECONNRESET");
      await until(
        () =>
          hasLog(fwdLog, /refused channel \d+ to tcp\/127\.0\.0\.1:7001: 127\.0\.0\.1 is a loopback address of the VM/),
        "the refusal in the forwarder's log",
      );
      await until(() => hasLog(extraLog, /forbidden: 127\.0\.0\.1 is a loopback address/), "the reason on the host");
    } finally {
      await stopProcess(extra);
    }
  });

  test("the VM's own bridge gateway (inside --allow 172.17.0.0/16) is refused while a container is reachable", async () => {
    // a VM service bound to the wildcard, as dockerd's tcp API, sshd or kubelet would be
    const vmSrvLog = join(tb.dir, "testsrv-in-vm.log");
    const vmSrv = tb.spawnInVm([join(tb.dir, "testsrv", "edgeport-testsrv")], { logFile: vmSrvLog });
    const p = base + 24;
    const extraLog = join(tb.dir, "publish-gateway.log");
    let extra: Bun.Subprocess | null = null;
    try {
      await until(() => readFileSync(vmSrvLog, "utf8").includes("testsrv ready"), "the VM's own test server");
      extra = spawnHost(
        [
          "publish",
          "--relay",
          `unix://${fwdSock}`,
          "--token-file",
          token,
          `127.0.0.1:${p}:172.17.0.1:7001`,
          `127.0.0.1:${p + 1}:${srvIp}:7001`,
        ],
        extraLog,
      );
      await waitForListener(p + 1);
      expect(await echoOnce(p + 1, "to the container")).toBe(true);
      expect(await echoOnce(p, "to the VM itself")).toBe(false); // the VM's echo server would answer
      expect(await endingOf(p)).toBe("ECONNRESET");
      await until(
        () =>
          hasLog(
            fwdLog,
            /refused channel \d+ to tcp\/172\.17\.0\.1:7001: 172\.17\.0\.1 is an address of the VM itself; allow it explicitly with --allow 172\.17\.0\.1\/32/,
          ),
        "the refusal in the forwarder's log",
      );
      await until(() => hasLog(extraLog, /forbidden: 172\.17\.0\.1 is an address of the VM itself/), "the host's line");
    } finally {
      await stopProcess(extra);
      await stopProcess(vmSrv);
    }
  });

  test("a wrong pipe secret is refused by the forwarder, and new clients are reset", async () => {
    const p = base + 21;
    const badLog = join(tb.dir, "publish-bad-secret.log");
    const bad = spawnHost(
      [
        "publish",
        "--relay",
        `unix://${fwdSock}`,
        "--token-file",
        writeToken(join(tb.dir, "wrong-token"), "not the right secret at all"),
        "--pipe-wait",
        "300ms",
        `127.0.0.1:${p}:${srvIp}:7001`,
      ],
      badLog,
    );
    try {
      await waitForListener(p);
      expect(await endingOf(p)).toBe("ECONNRESET");
      await until(
        () => hasLog(fwdLog, /pipe refused: authentication failed: the pipe secrets differ/),
        "the forwarder's refusal",
      );
      expect(hasLog(badLog, /authentication failed/)).toBe(true);
    } finally {
      await stopProcess(bad);
    }
  });

  test("the forwarder is killed and started again: new connections work within 2 s, host untouched", async () => {
    await stopProcess(fwd, "SIGKILL");
    expect(await echoOnce(port(7001))).toBe(false); // nothing to relay to now
    const t0 = performance.now();
    fwd = startForwarder();
    await until(() => echoOnce(port(7001), "back again"), "a working connection", 5000);
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(2000);
    expect(pub.exitCode).toBeNull();
  });
});

describe("exec: transport (the WSL2 shape): the host spawns the forwarder and uses its stdio", () => {
  test("curl, and 32 MiB each way with checksums, through exec:nsenter ... edgeport forwarder --listen stdio:", async () => {
    const p = base + 22;
    const log = join(tb.dir, "publish-exec.log");
    const relay = `exec:nsenter --net=${tb.netnsPath} -- ${EDGEPORT} forwarder --listen stdio: --allow 172.17.0.0/16 --log-level warn`;
    const h = spawnHost(
      ["publish", "--relay", relay, `127.0.0.1:${p}:${webIp}:80`, `127.0.0.1:${p + 1}-${p + 2}:${srvIp}:7002-7003`],
      log,
    );
    try {
      await waitForListener(p);
      const r = Bun.spawnSync(["curl", "-sS", "-m", "5", `http://127.0.0.1:${p}/`]);
      expect(r.stdout.toString()).toBe(INDEX_HTML);
      const total = 32 * MiB;
      const up = await connectClient(p + 1);
      await up.writeStream(prngStream(51), total);
      up.socket.shutdown();
      expect(await up.closed).toBeNull();
      expect(up.text()).toBe(`${streamSha(prngStream(51), total)} ${total}\n`);
      const down = await connectClient(p + 2, "127.0.0.1", { keepText: false });
      await down.write(new TextEncoder().encode(`${total} 53\n`));
      expect(await down.eof).toBeNull();
      down.socket.end();
      expect(down.sha256()).toBe(streamSha(prngStream(53), total));
    } finally {
      await stopProcess(h);
    }
  });
});

describe("the host side against a plain vpnkit forwarder (empty handshake, 64 KiB windows, no extensions)", () => {
  test("bytes both ways, half-close, and a refused port still resets the client at once", async () => {
    const sock = join(tb.dir, "vpnkit", "fwd.sock");
    const flog = join(tb.dir, "forwarder-vpnkit.log");
    const hlog = join(tb.dir, "publish-vpnkit.log");
    const vf = tb.spawnInVm(
      [
        EDGEPORT,
        "forwarder",
        "--vpnkit-compat",
        "--listen",
        `unix://${sock}`,
        "--allow",
        "172.17.0.0/16",
        "--log-format",
        "json",
        "--log-level",
        "debug",
      ],
      { logFile: flog },
    );
    const p = base + 30;
    let h: Bun.Subprocess | null = null;
    try {
      await until(() => hasLog(flog, /^listening on/), "the vpnkit-compat forwarder");
      h = spawnHost(["publish", "--relay", `unix://${sock}`, `127.0.0.1:${p}-${p + 5}:${srvIp}:7001-7006`], hlog);
      for (let i = 0; i <= 5; i++) await waitForListener(p + i);
      await until(() => hasLog(hlog, /pipe up: .*plain vpnkit peer, window 64 KiB, no extensions/), "a plain pipe");
      const total = 20 * MiB;
      const up = await connectClient(p + 1); // 7002: sha256 after EOF
      await up.writeStream(prngStream(41), total);
      up.socket.shutdown();
      expect(await up.closed).toBeNull();
      expect(up.text()).toBe(`${streamSha(prngStream(41), total)} ${total}\n`);
      const down = await connectClient(p + 2, "127.0.0.1", { keepText: false }); // 7003: source
      await down.write(new TextEncoder().encode(`${total} 43\n`));
      expect(await down.eof).toBeNull();
      down.socket.end();
      expect(down.sha256()).toBe(streamSha(prngStream(43), total));
      const t0 = performance.now();
      expect(await endingOf(p + 5)).toBe("ECONNRESET"); // 7006: nothing listens
      expect(performance.now() - t0).toBeLessThan(1000);
    } finally {
      await stopProcess(h);
      await stopProcess(vf);
    }
  });
});

describe("forwarder --engine: the engine's networks are the allowlist", () => {
  test("a container on a network created after the forwarder started is reachable; the VM's loopback is not", async () => {
    const sock = join(tb.dir, "engine", "fwd.sock");
    const flog = join(tb.dir, "forwarder-engine.log");
    const ef = tb.spawnInVm(
      [
        EDGEPORT,
        "forwarder",
        "--listen",
        `unix://${sock}`,
        "--engine",
        tb.dockerHost,
        "--log-format",
        "json",
        "--log-level",
        "debug",
      ],
      { logFile: flog },
    );
    const p = base + 40;
    let h: Bun.Subprocess | null = null;
    try {
      await until(
        () => hasLog(flog, /^listening on .* may dial: engine networks .*172\.17\.0\.0\/16/),
        "the forwarder with the engine's subnets",
      );
      await tb.dockerOk(["network", "create", "late"]);
      const late = await tb.runContainer({ name: "late-web", args: ["httpd", "-f", "-p", "80", "-h", "/www"] });
      await tb.dockerOk(["network", "connect", "late", "late-web"]);
      const lateIp = await tb.dockerOk([
        "inspect",
        "-f",
        '{{(index .NetworkSettings.Networks "late").IPAddress}}',
        late.id,
      ]);
      expect(lateIp).toMatch(/^172\.(1[89])\./); // inside the test bed's pool
      h = spawnHost(
        ["publish", "--relay", `unix://${sock}`, `127.0.0.1:${p}:${lateIp}:80`, `127.0.0.1:${p + 1}:127.0.0.1:7001`],
        join(tb.dir, "publish-engine.log"),
      );
      await waitForListener(p);
      const r = Bun.spawnSync(["curl", "-sS", "-m", "5", `http://127.0.0.1:${p}/`]);
      expect(r.stdout.toString()).toBe(INDEX_HTML);
      expect(await endingOf(p + 1)).toBe("ECONNRESET");
      await until(
        () => hasLog(flog, /refused channel \d+ to tcp\/127\.0\.0\.1:7001: 127\.0\.0\.1 is a loopback address/),
        "the refusal",
      );
    } finally {
      await stopProcess(h);
      await stopProcess(ef);
    }
  });
});
