#!/usr/bin/env bun
/**
 * `edgeport run` timing benchmark on the test bed, measured against the engine's own event times:
 *   - start event -> host listener accepting (single port), over N containers;
 *   - die event -> host port bindable again by another process;
 *   - a 100-port range (-p P-P+99:P-P+99): start event -> all 200 listeners (both loopbacks) up,
 *     and die event -> all freed.
 * Bounded: --rounds (default 10) containers, one range.  bun scripts/bench-run.ts [--rounds 10]
 */
import { join } from "node:path";
import { EDGEPORT, ensureBinary, hasLog, spawnHost, stopProcess, until } from "../test/helpers/e2e.ts";
import { canBind as canBindOn, freePortRange } from "../test/helpers/tcp-client.ts";
import { startTestbed } from "./testbed.ts";

const canBind = (port: number) => canBindOn("127.0.0.1", port);

const rounds = Number(Bun.argv.includes("--rounds") ? Bun.argv[Bun.argv.indexOf("--rounds") + 1] : 10);
const accepting = async (port: number) => {
  try {
    (await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })).terminate();
    return true;
  } catch {
    return false;
  }
};
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

await ensureBinary();
const tb = await startTestbed();
const results: string[] = [];
let fwd: Bun.Subprocess | null = null;
let run: Bun.Subprocess | null = null;
try {
  const sock = join(tb.dir, "fwd.sock");
  const flog = join(tb.dir, "fwd.log");
  fwd = tb.spawnInVm(
    [EDGEPORT, "forwarder", "--listen", `unix://${sock}`, "--engine", tb.dockerHost, "--log-format", "json"],
    { logFile: flog },
  );
  await until(() => hasLog(flog, /^listening/), "forwarder");
  const rlog = join(tb.dir, "run.log");
  run = spawnHost(
    ["run", "--engine", tb.dockerHost, "--relay", `unix://${sock}`, "--api", "none", "--firewall", "none"],
    rlog,
    "info",
  );
  await until(() => hasLog(rlog, /^following engine/), "edgeport run");

  // engine event times, from the engine's own stream (same clock: the VM is this machine)
  const times = new Map<string, number>();
  const ctl = new AbortController();
  void (async () => {
    const res = await fetch(`http://localhost/events?filters=${encodeURIComponent('{"type":["container"]}')}`, {
      unix: tb.dockerSock,
      signal: ctl.signal,
    } as RequestInit);
    let buf = "";
    for await (const chunk of res.body!) {
      buf += new TextDecoder().decode(chunk);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const e = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        times.set(`${e.Action} ${e.Actor.Attributes.name}`, e.timeNano / 1e6);
      }
    }
  })().catch(() => undefined);
  const eventTime = async (key: string) => {
    await until(() => times.has(key), key);
    return times.get(key)!;
  };

  const base = freePortRange(110);
  const up: number[] = [];
  const down: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const name = `b${i}`;
    const p = base + 100 + (i % 10);
    const started = tb.dockerOk([
      "run",
      "-d",
      "--name",
      name,
      "-p",
      `127.0.0.1:${p}:80`,
      "edgeport-busybox:test",
      "httpd",
      "-f",
      "-p",
      "80",
      "-h",
      "/www",
    ]);
    await until(() => accepting(p), `listener ${p}`, 10_000);
    const tUp = Date.now();
    await started;
    up.push(tUp - (await eventTime(`start ${name}`)));
    const killed = tb.dockerOk(["rm", "-f", name]);
    await until(() => canBind(p), `port ${p} freed`, 10_000);
    const tDown = Date.now();
    await killed;
    down.push(tDown - (await eventTime(`die ${name}`)));
  }
  results.push(
    `| single port: start event -> listener accepting | ${rounds} | ${pct(up, 50).toFixed(1)} | ${pct(up, 90).toFixed(1)} | ${Math.max(...up).toFixed(1)} |`,
  );
  results.push(
    `| single port: die event -> port bindable again | ${rounds} | ${pct(down, 50).toFixed(1)} | ${pct(down, 90).toFixed(1)} | ${Math.max(...down).toFixed(1)} |`,
  );

  const t0 = Date.now();
  const started = tb.dockerOk([
    "run",
    "-d",
    "--name",
    "range",
    "-p",
    `${base}-${base + 99}:${base}-${base + 99}`,
    "edgeport-busybox:test",
    "sleep",
    "600",
  ]);
  await until(
    async () => (await Promise.all(Array.from({ length: 100 }, (_, i) => accepting(base + i)))).every(Boolean),
    "100 ports",
    60_000,
  );
  const tRange = Date.now();
  await started;
  const dockerRunMs = Date.now() - t0;
  const rangeUp = tRange - (await eventTime("start range"));
  const killed = tb.dockerOk(["kill", "range"]); // the engine takes seconds to tear its 100 mappings down: do not wait for it
  await until(() => Array.from({ length: 100 }, (_, i) => canBind(base + i)).every(Boolean), "100 ports freed", 60_000);
  const tFreed = Date.now();
  const rangeDown = tFreed - (await eventTime("die range"));
  await killed;
  results.push(`| 100-port range: start event -> all 200 listeners accepting | 1 | ${rangeUp.toFixed(1)} | - | - |`);
  results.push(`| 100-port range: die event -> all 100 ports bindable | 1 | ${rangeDown.toFixed(1)} | - | - |`);
  results.push(`| (for scale) docker run -p with the 100-port range, in the VM | 1 | ${dockerRunMs} | - | - |`);
  ctl.abort();
} finally {
  await stopProcess(run);
  await stopProcess(fwd);
  await tb.stop();
}
console.log(
  `\nedgeport run timings (${new Date().toISOString()}, Bun ${Bun.version}); ms, measured from the engine's event timestamps\n`,
);
console.log("| what | samples | p50 / value ms | p90 ms | max ms |");
console.log("|---|---|---|---|---|");
for (const r of results) console.log(r);
