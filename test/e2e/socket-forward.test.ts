/**
 * Socket forwards end to end: the compiled binary on both sides of the test bed, a unix echo server
 * in the VM namespace (the namespace shares the file system: its socket lives in a directory of this
 * test's own), `edgeport run` and its API and CLI on the host, and `edgeport publish --relay`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestbed, type Testbed } from "../../scripts/testbed.ts";
import type { PortState } from "../../src/publisher/daemon.ts";
import { EDGEPORT, ensureBinary, hasLog, logLines, spawnHost, stopProcess, until } from "../helpers/e2e.ts";
import { streamSha, unixClient } from "../helpers/tcp-client.ts";
import { prngStream } from "./fixtures/prng.ts";

let tb: Testbed;
let fwd: Bun.Subprocess;
let daemon: Bun.Subprocess;
let echo: Bun.Subprocess;
let dir: string; // the host's sockets
let vm: string; // the VM's sockets
let api: string;
let runLog: string;
let fwdLog: string;
let baseline: number; // the daemon's fds with one forward published
const host = (name: string) => join(dir, name);
const spec = (h: string, v: string) => `unix://${host(h)}:unix://${join(vm, v)}`;
/** Connects, and counts what arrives before the forward closes the connection. */
async function bytesBeforeClose(path: string): Promise<number> {
  // the close can beat Bun's own view of the connect: then the connect itself fails
  const c = await unixClient(path).catch(() => null);
  if (!c) return 0;
  await c.closed;
  return c.received;
}
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

const cli = (args: string[]) => {
  const r = Bun.spawnSync([EDGEPORT, ...args, "--api", `unix://${api}`], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};
const call = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`http://localhost${path}`, {
    method,
    unix: api,
    ...(body ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
  } as RequestInit);
  return { status: r.status, body: (await r.json().catch(() => null)) as { code?: string; message?: string } };
};
const ports = async () =>
  (await (await fetch("http://localhost/v1/ports", { unix: api } as RequestInit)).json()) as PortState[];

beforeAll(async () => {
  await ensureBinary();
  tb = await startTestbed();
  dir = mkdtempSync(join(tmpdir(), "ep-sf-"));
  vm = mkdtempSync(join(tmpdir(), "ep-vm-"));
  const fwdSock = join(tb.dir, "edgeport", "fwd.sock");
  fwdLog = join(tb.dir, "forwarder.log");
  echo = tb.spawnInVm([process.execPath, join(import.meta.dir, "fixtures", "unix-echo.ts"), join(vm, "echo.sock")], {
    logFile: join(tb.dir, "echo.log"),
  });
  const allow = ["echo.sock", "nobody.sock"].flatMap((f) => ["--allow", `unix://${join(vm, f)}`]);
  fwd = tb.spawnInVm([EDGEPORT, "forwarder", "--listen", `unix://${fwdSock}`, ...allow, "--log-format", "json"], {
    logFile: fwdLog,
  });
  await until(() => hasLog(fwdLog, /^listening on/) && existsSync(join(vm, "echo.sock")), "the forwarder and echo");
  api = join(tb.dir, "api", "control.sock");
  runLog = join(tb.dir, "run.log");
  // one forward comes from the config file's "publish" list
  const config = join(tb.dir, "edgeport.toml");
  await Bun.write(config, `publish = ["unix://${host("config.sock")}:unix://${join(vm, "echo.sock")}"]\n`);
  daemon = spawnHost(
    [
      "run",
      "--config",
      config,
      "--relay",
      `unix://${fwdSock}`,
      "--engine",
      "none",
      "--firewall",
      "none",
      "--api",
      `unix://${api}`,
    ],
    runLog,
  );
  await until(() => existsSync(api) && existsSync(host("config.sock")), "the daemon's API and the config's forward");
}, 120_000);

afterAll(async () => {
  await stopProcess(daemon);
  await stopProcess(fwd);
  await stopProcess(echo);
  await tb?.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(vm, { recursive: true, force: true });
}, 60_000);

describe("a socket forward through the daemon", () => {
  test("publish makes an owner-only socket at once; ls, state and metrics show it", async () => {
    const r = cli(["publish", spec("echo.sock", "echo.sock")]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(statSync(host("echo.sock")).mode & 0o777).toBe(0o700); // checked before anything connects
    expect(r.out).toMatch(
      new RegExp(`^[0-9a-f]{12} published: unix://${host("echo.sock")}->unix://${vm}/echo.sock\n$`),
    );
    const row = (await ports()).find((p) => p.key === `unix:${host("echo.sock")}`)!;
    expect(row).toMatchObject({ proto: "unix", status: "published", source: { kind: "ad-hoc" } });
    expect(cli(["ls"]).out).toContain(`unix://${host("echo.sock")}->unix://${vm}/echo.sock`);
    const metrics = await (await fetch("http://localhost/metrics", { unix: api } as RequestInit)).text();
    expect(metrics).toContain(
      `edgeport_connections_total{proto="unix",address="unix://${host("echo.sock")}",port="",source="ad-hoc",container=""}`,
    );
    baseline = fds(daemon.pid);
  });

  test("32 MiB each way with checksums, then half-close: the client shuts its write side and still reads the reply", async () => {
    const total = 32 << 20;
    const c = await unixClient(host("echo.sock"));
    const reading = c.eof;
    await c.writeStream(prngStream(7), total);
    c.socket.shutdown();
    expect(await reading).toBeNull(); // the echo's FIN after all of it
    expect(c.received).toBe(total);
    expect(c.sha256()).toBe(streamSha(prngStream(7), total));
    const row = (await ports()).find((p) => p.key === `unix:${host("echo.sock")}`)!;
    expect(row.bytesIn).toBeGreaterThanOrEqual(total);
    expect(row.bytesOut).toBeGreaterThanOrEqual(total);
  }, 60_000);

  test("a VM path nobody listens on: the client is closed at once and the reason is logged", async () => {
    expect(cli(["publish", spec("nobody.sock", "nobody.sock")]).code).toBe(0);
    const t0 = Date.now();
    expect(await bytesBeforeClose(host("nobody.sock"))).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2000);
    await until(
      () => hasLog(runLog, /nobody\.sock <- client 1: .*(ECONNREFUSED|ENOENT|refused)/),
      "the refusal logged",
    );
  });

  test("a VM path the forwarder does not allow is refused and logged", async () => {
    expect(cli(["publish", spec("forbidden.sock", "echo2.sock")]).code).toBe(0);
    expect(await bytesBeforeClose(host("forbidden.sock"))).toBe(0);
    await until(() => hasLog(fwdLog, /^refused channel \d+ to .*echo2\.sock/), "the forwarder's refusal");
    await until(() => hasLog(runLog, /forbidden\.sock <- client 1: /), "the host's log line");
  });
});

test('the config file\'s "publish" list: its socket forward is published at start, owner-only', async () => {
  expect(statSync(host("config.sock")).mode & 0o777).toBe(0o700);
  const c = await unixClient(host("config.sock"));
  await c.write(new TextEncoder().encode("from the config"));
  c.socket.shutdown();
  expect(await c.eof).toBeNull();
  expect(c.text()).toBe("from the config");
});

describe("bad input is refused, naming the part; nothing published is lost", () => {
  const notMine = () => {
    const d = join(dir, "theirs");
    mkdirSync(d, { recursive: true });
    chownSync(d, 65534, 65534);
    return `unix://${d}/x.sock:unix:///vm/x.sock`;
  };
  const groupWritable = () => {
    const d = join(dir, "shared");
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o770);
    return `unix://${d}/x.sock:unix:///vm/x.sock`;
  };
  const cases: [string, () => string, RegExp][] = [
    ["a relative host path", () => "unix://rel.sock:unix:///vm/x.sock", /host path "rel.sock" is relative/],
    ["a relative VM path", () => `unix://${host("r.sock")}:unix://vm.sock`, /VM path "vm.sock" is relative/],
    ["a socket to a port", () => `unix://${host("m.sock")}:10.0.0.2:80`, /target "10.0.0.2:80" is not/],
    ["a port to a socket", () => "8080:unix:///x", /host side "8080" is a port/],
    ["a path too long for sun_path", () => `unix://${dir}/${"x".repeat(110)}.sock:unix:///v.sock`, /too long/],
    ["a directory of another user's", notMine, /belongs to uid 65534/],
    ["a group-writable directory", groupWritable, /writable by group or others \(mode 0770\)/],
    [
      "the world-writable /tmp",
      () => "unix:///tmp/ep-x.sock:unix:///vm/x.sock",
      /\/tmp is writable by group or others/,
    ],
  ];

  test.each(cases)("%s: exit 2 from the CLI, 400 from the API", async (_what, make, why) => {
    const before = fds(daemon.pid);
    const s = make();
    const r = cli(["publish", s]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(why);
    const a = await call("POST", "/v1/ports", { spec: s });
    expect(a.status).toBe(400);
    expect(a.body.message).toMatch(why);
    expect(a.body.code).toBe("E_BAD_SPEC");
    const echoRow = (await ports()).find((p) => p.key === `unix:${host("echo.sock")}`);
    expect(echoRow?.status).toBe("published");
    expect(fds(daemon.pid)).toBeLessThanOrEqual(before + 1);
  });

  test("the forward still works after them", async () => {
    const c = await unixClient(host("echo.sock"));
    await c.write(new TextEncoder().encode("still here"));
    c.socket.shutdown();
    expect(await c.eof).toBeNull();
    expect(c.text()).toBe("still here");
  });
});

describe("the socket file's life", () => {
  test("a stale socket file (nobody behind it) is replaced", async () => {
    const p = host("stale.sock");
    Bun.spawnSync(["python3", "-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(p)})`]);
    expect(statSync(p).isSocket()).toBe(true);
    expect(statSync(p).mode & 0o777).not.toBe(0o700);
    const r = cli(["publish", `unix://${p}:unix://${vm}/echo.sock`]);
    expect(r.code).toBe(0);
    expect(statSync(p).mode & 0o777).toBe(0o700); // ours now (tmpfs may reuse the inode number)
    const c = await unixClient(p);
    await c.write(new TextEncoder().encode("fresh"));
    c.socket.shutdown();
    expect(await c.eof).toBeNull();
    expect(c.text()).toBe("fresh");
  });

  test("a live socket is refused, naming it; it is left alone", async () => {
    const p = host("live.sock");
    const l = Bun.listen({ unix: p, socket: { data() {} } });
    const ino = statSync(p).ino;
    try {
      const r = cli(["publish", `unix://${p}:unix://${vm}/echo.sock`]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`${p} is a live socket`);
      expect(statSync(p).ino).toBe(ino);
    } finally {
      l.stop(true);
    }
  });

  test("unpublish removes the socket file", async () => {
    const p = host("stale.sock");
    expect(cli(["unpublish", `unix://${p}:unix://${vm}/echo.sock`]).code).toBe(0);
    await until(() => !existsSync(p), "the socket file gone");
  });

  test("standalone publish --relay: the forward works and its file goes at exit", async () => {
    const p = host("alone.sock");
    const log = join(tb.dir, "alone.log");
    const pub = spawnHost(
      ["publish", "--relay", `unix://${join(tb.dir, "edgeport", "fwd.sock")}`, `unix://${p}:unix://${vm}/echo.sock`],
      log,
    );
    await until(() => hasLog(log, /^published unix:/), "the standalone forward");
    expect(statSync(p).mode & 0o777).toBe(0o700);
    const c = await unixClient(p);
    await c.write(new TextEncoder().encode("alone"));
    c.socket.shutdown();
    expect(await c.eof).toBeNull();
    expect(c.text()).toBe("alone");
    await stopProcess(pub);
    expect(existsSync(p)).toBe(false);
  });

  test("the daemon's fds are back to the baseline (plus the two listeners added since), then its exit removes every socket file", async () => {
    expect(existsSync(host("echo.sock"))).toBe(true);
    await until(() => fds(daemon.pid) <= baseline + 2, `fds back at ${baseline} + 2`);
    console.log(`socket-forward: daemon fds ${baseline} with one forward, ${fds(daemon.pid)} with three at the end`);
    await stopProcess(daemon);
    expect(daemon.exitCode).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith(".sock"))).toEqual([]);
    expect(logLines(runLog).some((l) => /unpublished unix:/.test(l.msg))).toBe(true);
  });
});
