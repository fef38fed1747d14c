#!/usr/bin/env bun
/**
 * Relay benchmark, every figure from the same run on the same test bed:
 *   - iperf3 throughput, both directions: direct inside the VM (no relay: the ceiling), a socat
 *     two-hop relay over a unix socket (the naive peer), and edgeport at several window sizes;
 *   - small-request latency (64-byte echo round trips) while a bulk stream shares the pipe;
 *   - memory (RSS) of both edgeport processes after the runs.
 * Bounded: each iperf3 run lasts --seconds (default 3), each latency run 1000 round trips.
 *   bun scripts/bench.ts [--seconds 3] [--windows 65536,262144,1048576,4194304]
 */
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { startTestbed } from "./testbed.ts";
import { EDGEPORT, ensureBinary, hasLog, spawnHost, stopProcess, until, waitForListener } from "../test/helpers/e2e.ts";
import { connectClient, freePortRange } from "../test/helpers/tcp-client.ts";

const arg = (name: string, def: string) => (Bun.argv.includes(`--${name}`) ? Bun.argv[Bun.argv.indexOf(`--${name}`) + 1]! : def);
const seconds = Number(arg("seconds", "3"));
const windows = arg("windows", "65536,262144,1048576,4194304").split(",").map(Number);

await ensureBinary();
const tb = await startTestbed();
const rows: string[] = [];
const iperfJson = (out: string) => JSON.parse(out).end.sum_received.bits_per_second as number;
const gbit = (bps: number) => (bps / 1e9).toFixed(2);

async function iperf(where: "vm" | "host", host: string, port: number, reverse: boolean): Promise<number> {
  const cmd = ["iperf3", "-c", host, "-p", String(port), "-t", String(seconds), "-J", ...(reverse ? ["-R"] : [])];
  const full = where === "vm" ? ["nsenter", `--net=${tb.netnsPath}`, "--", ...cmd] : cmd;
  const r = Bun.spawnSync(full, { timeout: (seconds + 20) * 1000 });
  if (r.exitCode !== 0) throw new Error(`iperf3 failed: ${r.stdout.toString().slice(0, 300)} ${r.stderr.toString()}`);
  return iperfJson(r.stdout.toString());
}

/** p50/p99 of 64-byte echo round trips on one connection, optionally while a bulk stream runs. */
async function latency(echoPort: number, bulkPort: number | null): Promise<{ p50: number; p99: number }> {
  // the bulk reader is its own process, so it does not share this event loop with the measurement
  const bulk = bulkPort === null ? null : Bun.spawn(["timeout", "60", "bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${bulkPort}; echo "0 7" >&3; cat <&3 >/dev/null`]);
  if (bulk) await Bun.sleep(500);
  const c = await connectClient(echoPort);
  const msg = new Uint8Array(64).fill(120);
  const times: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const want = c.received + 64;
    const t0 = performance.now();
    await c.write(msg);
    while (c.received < want) await new Promise((r) => setImmediate(r));
    times.push(performance.now() - t0);
  }
  c.socket.terminate();
  bulk?.kill();
  await bulk?.exited;
  times.sort((a, b) => a - b);
  return { p50: times[500]!, p99: times[990]! };
}

const rss = (pid: number) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024);

try {
  const srv = await tb.runTestServer("testsrv");
  const iperfC = await tb.runContainer({ name: "iperf", args: ["/usr/bin/iperf3", "-s", "-p", "5201"], mounts: ["/usr:/usr:ro"] });
  await until(() => Bun.spawnSync(["nsenter", `--net=${tb.netnsPath}`, "--", "bash", "-c", `exec 3<>/dev/tcp/${iperfC.ip}/5201`]).exitCode === 0, "iperf3 server");
  const base = freePortRange(4);

  // the ceiling: no relay, client inside the VM
  rows.push(`| direct inside the VM (no relay) | - | ${gbit(await iperf("vm", iperfC.ip, 5201, false))} | ${gbit(await iperf("vm", iperfC.ip, 5201, true))} | - | - | - | - |`);

  // the naive peer: socat host TCP -> unix socket -> socat in the VM -> container
  const ssock = join(tb.dir, "socat.sock");
  const vmSocat = tb.spawnInVm(["socat", `UNIX-LISTEN:${ssock},fork`, `TCP:${iperfC.ip}:5201`]);
  const hostSocat = Bun.spawn(["socat", `TCP-LISTEN:${base},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${ssock}`]);
  await waitForListener(base);
  await until(() => Bun.spawnSync(["test", "-S", ssock]).exitCode === 0, "socat socket");
  rows.push(`| socat two-hop over a unix socket (one socket per connection) | - | ${gbit(await iperf("host", "127.0.0.1", base, false))} | ${gbit(await iperf("host", "127.0.0.1", base, true))} | - | - | - | - |`);
  hostSocat.kill();
  await stopProcess(vmSocat);

  for (const w of windows) {
    const sock = join(tb.dir, `fwd-${w}.sock`);
    const flog = join(tb.dir, `fwd-${w}.log`);
    const fwd = tb.spawnInVm([EDGEPORT, "forwarder", "--listen", `unix://${sock}`, "--allow", "172.17.0.0/16", "--window", String(w), "--log-format", "json"], { logFile: flog });
    await until(() => hasLog(flog, /^listening/), "forwarder");
    const p = base + 1;
    const pub = spawnHost(["publish", "--relay", `unix://${sock}`, "--window", String(w), `127.0.0.1:${p}:${iperfC.ip}:5201`, `127.0.0.1:${p + 1}-${p + 2}:${srv.ip}:7001-7002`, `127.0.0.1:${p + 3}:${srv.ip}:7003`], join(tb.dir, `pub-${w}.log`));
    await waitForListener(p);
    const up = await iperf("host", "127.0.0.1", p, false);
    const down = await iperf("host", "127.0.0.1", p, true);
    const idle = await latency(p + 1, null);
    const lat = await latency(p + 1, p + 3);
    rows.push(`| edgeport, window ${w / 1024} KiB | ${w} | ${gbit(up)} | ${gbit(down)} | ${idle.p50.toFixed(2)} / ${idle.p99.toFixed(2)} | ${lat.p50.toFixed(2)} / ${lat.p99.toFixed(2)} | ${rss(pub.pid)} | ${rss(fwd.pid)} |`);
    await stopProcess(pub);
    await stopProcess(fwd);
  }
} finally {
  await tb.stop();
}

console.log(`\nRelay benchmark: iperf3 ${seconds} s per run, 64-byte echo latency over 1000 round trips while one bulk stream shares the pipe (${new Date().toISOString()}, ${Bun.version})\n`);
console.log("| path | window (bytes) | host -> container Gbit/s | container -> host Gbit/s | echo p50 / p99 ms idle | echo p50 / p99 ms beside a bulk stream | host RSS MiB | forwarder RSS MiB |");
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) console.log(r);
