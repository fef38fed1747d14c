/**
 * Issue 20, item 9, with the real binary on loopback: /metrics scraped as docs/operations.md says
 * (the TCP control API with a bearer token), read back by a strict parser. The engine reads "none"
 * under --engine none while health is ok; the open-connections gauge follows a held connection;
 * build info names this build; the process figures match what /proc says of the daemon; the pipe's
 * resets and reconnects count a forwarder that goes away and comes back.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EDGEPORT, ensureBinary, hasLog, rssKiB, spawnHost, stopProcess, until, writeToken } from "../helpers/e2e.ts";
import { type Family, parseExposition } from "../helpers/prometheus.ts";
import { connectClient, freePort, freePortRange } from "../helpers/tcp-client.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-metrics-"));
const fwdSock = join(dir, "fwd.sock");
const token = "metrics-token-0123456789abcdef";
const tokenFile = writeToken(join(dir, "token"), token);
let apiPort: number;
let base: number;
let fwd: Bun.Subprocess | null = null;
let daemon: Bun.Subprocess;
let startedAt: number;
let echo: Bun.TCPSocketListener<undefined>;
let fwdStarts = 0;

const startForwarder = async () => {
  const log = join(dir, `fwd-${++fwdStarts}.log`);
  fwd = spawnHost(["forwarder", "--listen", `unix://${fwdSock}`, "--allow", "127.0.0.0/8"], log);
  await until(() => hasLog(log, /^listening on/), "the forwarder");
};
const scrape = async (auth = `Bearer ${token}`) =>
  fetch(`http://127.0.0.1:${apiPort}/metrics`, { headers: { authorization: auth } });
const metrics = async (): Promise<Map<string, Family>> => parseExposition(await (await scrape()).text());
const value = (fams: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
  fams.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

beforeAll(async () => {
  await ensureBinary();
  apiPort = freePort();
  base = freePortRange(2);
  echo = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { data: (s, d) => void s.write(d), end: (s) => void s.end() },
  });
  await startForwarder();
  startedAt = Date.now() / 1000;
  daemon = spawnHost(
    [
      "run",
      ...["--relay", `unix://${fwdSock}`, "--engine", "none", "--firewall", "none", "--state-dir", "none"],
      ...["--api", `tcp://127.0.0.1:${apiPort}`, "--api-token-file", tokenFile],
    ],
    join(dir, "run.log"),
  );
  await until(() => hasLog(join(dir, "run.log"), /pipe up/), "the daemon's pipe", 15_000);
});
afterAll(async () => {
  await stopProcess(daemon);
  await stopProcess(fwd);
  echo?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

test("scraped over the TCP API with the bearer token (401 without); the engine reads none while health is ok", async () => {
  expect((await scrape("")).status).toBe(401);
  const r = await scrape();
  expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const fams = parseExposition(await r.text());
  const health = await fetch(`http://127.0.0.1:${apiPort}/v1/health`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(((await health.json()) as { ok: boolean }).ok).toBe(true);
  expect(fams.has("edgeport_engine_connected")).toBe(false);
  expect(fams.get("edgeport_engine_state")!.samples.map((s) => [s.labels.state, s.value])).toEqual([
    ["none", 1],
    ["connected", 0],
    ["down", 0],
  ]);
  const version = JSON.parse(Bun.spawnSync([EDGEPORT, "version", "--json"]).stdout.toString()).version as string;
  expect(fams.get("edgeport_build_info")!.samples).toEqual([
    {
      labels: {
        version: version.split("+")[0]!,
        ...(version.includes("+") ? { commit: version.split("+")[1]! } : {}),
        bun: expect.any(String),
      },
      value: 1,
    },
  ]);
});

test("per-port families follow a held connection, with proto/address/port/source/container labels", async () => {
  const pub = Bun.spawnSync([
    EDGEPORT,
    "publish",
    `127.0.0.1:${base}:127.0.0.1:${echo.port}`,
    "--api",
    `tcp://127.0.0.1:${apiPort}`,
    "--api-token-file",
    tokenFile,
  ]);
  expect(pub.exitCode).toBe(0);
  const labels = { proto: "tcp", address: "127.0.0.1", port: String(base), source: "ad-hoc", container: "" };
  expect(value(await metrics(), "edgeport_open_connections", labels)).toBe(0);
  const c = await connectClient(base);
  try {
    await c.write(new TextEncoder().encode("hello"));
    await until(() => c.received === 5, "the echo");
    const fams = await metrics();
    expect(value(fams, "edgeport_open_connections", labels)).toBe(1);
    expect(value(fams, "edgeport_connections_total", labels)).toBe(1);
    expect(value(fams, "edgeport_bytes_total", { ...labels, direction: "in" })).toBe(5);
  } finally {
    c.socket.end();
  }
  await until(async () => value(await metrics(), "edgeport_open_connections", labels) === 0, "the gauge back to 0");
});

test("process figures match /proc of the daemon", async () => {
  const fams = await metrics();
  const fds = readdirSync(`/proc/${daemon.pid}/fd`).length;
  expect(Math.abs(value(fams, "process_open_fds")! - fds)).toBeLessThanOrEqual(3);
  expect(value(fams, "process_max_fds")).toBeGreaterThan(fds);
  const rss = rssKiB(daemon.pid) * 1024;
  expect(Math.abs(value(fams, "process_resident_memory_bytes")! - rss) / rss).toBeLessThan(0.25);
  expect(Math.abs(value(fams, "process_start_time_seconds")! - startedAt)).toBeLessThan(5);
  expect(value(fams, "process_cpu_seconds_total")).toBeGreaterThan(0);
});

test("the pipe's counters: the forwarder stopped is a reset, back again a reconnect", async () => {
  const before = await metrics();
  expect(value(before, "edgeport_pipe_up")).toBe(1);
  expect(value(before, "edgeport_pipe_resets_total")).toBe(0);
  expect(value(before, "edgeport_pipe_reconnects_total")).toBe(0);
  await stopProcess(fwd);
  await until(async () => value(await metrics(), "edgeport_pipe_up") === 0, "the pipe down");
  expect(value(await metrics(), "edgeport_pipe_resets_total")).toBe(1);
  await startForwarder();
  await until(async () => value(await metrics(), "edgeport_pipe_up") === 1, "the pipe up again", 15_000);
  const after = await metrics();
  expect(value(after, "edgeport_pipe_reconnects_total")).toBe(1);
  expect(value(after, "edgeport_pipe_resets_total")).toBe(1);
});
