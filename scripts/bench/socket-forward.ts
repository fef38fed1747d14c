/**
 * The benchmark's socket-forward rows: one edgeport pair over one unix pipe carries both a TCP
 * publish and a socket forward to the same peer code in the VM (stream-peer.ts: a sink and a source
 * behind a unix socket and behind a TCP port), so only the ends differ. The same client process
 * (stream-client.ts) measures each, 1 stream up (host -> VM) and down, rounds interleaved.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnHost, stopProcess, until, waitForListener } from "../../test/helpers/e2e.ts";
import type { Testbed } from "../testbed.ts";

export interface StreamRow {
  name: string;
  up: number[];
  down: number[];
}

const HERE = import.meta.dir;

function client(mode: "up" | "down", target: string, bytes: number): number {
  const r = Bun.spawnSync(["bun", join(HERE, "stream-client.ts"), mode, target, String(bytes)], {
    timeout: 120_000,
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`stream-client ${mode} ${target}: ${r.stderr.toString().slice(0, 300)}`);
  return JSON.parse(r.stdout.toString().trim().split("\n").pop()!).gbps;
}

/** Runs `rounds` rounds of both rows; every process it starts is stopped by PID before it returns. */
export async function socketForwardBench(
  tb: Testbed,
  o: { bin: string; rounds: number; bytes: number; tcpBase: number; hostBase: number },
): Promise<StreamRow[]> {
  const vm = join(tb.dir, "sf-vm");
  mkdirSync(vm, { recursive: true });
  const host = mkdtempSync(join(tmpdir(), "ep-bench-sf-"));
  const procs: Bun.Subprocess[] = [];
  try {
    procs.push(
      tb.spawnInVm(["bun", join(HERE, "stream-peer.ts"), vm, String(o.tcpBase)], {
        logFile: join(tb.dir, "sf-peer.log"),
      }),
    );
    await until(() => Bun.spawnSync(["test", "-S", join(vm, "source.sock")]).exitCode === 0, "the stream peer");
    const sock = join(tb.dir, "fwd-sf.sock");
    const allow = ["127.0.0.1/32", `unix://${vm}/sink.sock`, `unix://${vm}/source.sock`].flatMap((a) => ["--allow", a]);
    procs.push(
      tb.spawnInVm(
        [o.bin, "forwarder", "--listen", `unix://${sock}`, ...allow, "--log-format", "json", "--log-level", "warn"],
        {
          logFile: join(tb.dir, "fwd-sf.log"),
        },
      ),
    );
    await until(() => Bun.spawnSync(["test", "-S", sock]).exitCode === 0, "the socket-forward bench's forwarder");
    const specs = [
      `127.0.0.1:${o.hostBase}:127.0.0.1:${o.tcpBase}`,
      `127.0.0.1:${o.hostBase + 1}:127.0.0.1:${o.tcpBase + 1}`,
      `unix://${host}/sink.sock:unix://${vm}/sink.sock`,
      `unix://${host}/source.sock:unix://${vm}/source.sock`,
    ];
    procs.push(
      spawnHost(["publish", "--relay", `unix://${sock}`, ...specs], join(tb.dir, "pub-sf.log"), "info", o.bin),
    );
    await waitForListener(o.hostBase);
    await waitForListener(o.hostBase + 1);
    await until(() => Bun.spawnSync(["test", "-S", join(host, "source.sock")]).exitCode === 0, "the socket forwards");
    const rows: (StreamRow & { up: number[]; down: number[]; to: [string, string] })[] = [
      { name: "edgeport, TCP ends", up: [], down: [], to: [`127.0.0.1:${o.hostBase}`, `127.0.0.1:${o.hostBase + 1}`] },
      { name: "socket forward", up: [], down: [], to: [`unix:${host}/sink.sock`, `unix:${host}/source.sock`] },
    ];
    client("up", rows[1]!.to[0], 1 << 20); // warm both up once
    client("up", rows[0]!.to[0], 1 << 20);
    for (let r = 0; r < o.rounds; r++) {
      for (const row of r % 2 ? [...rows].reverse() : rows) {
        row.up.push(client("up", row.to[0], o.bytes));
        row.down.push(client("down", row.to[1], o.bytes));
        console.error(
          `socket-forward round ${r + 1}/${o.rounds} ${row.name}: up ${row.up.at(-1)!.toFixed(2)}, down ${row.down.at(-1)!.toFixed(2)} Gbit/s`,
        );
      }
    }
    return rows.map(({ name, up, down }) => ({ name, up, down }));
  } finally {
    for (const p of procs.reverse()) await stopProcess(p);
    rmSync(host, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The rows as markdown: median (min-max) Gbit/s, and the socket forward's ratio to the TCP row. */
export function socketForwardTable(rows: StreamRow[]): string[] {
  const cell = (xs: number[]) =>
    `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
  const [tcp, unix] = rows;
  const ratio = (k: "up" | "down") => (median(unix![k]) / median(tcp![k])).toFixed(2);
  return [
    "| one pipe, 1 stream, Gbit/s | up (host -> VM) | down (VM -> host) |",
    "|---|---|---|",
    ...rows.map((r) => `| ${r.name} | ${cell(r.up)} | ${cell(r.down)} |`),
    `| socket forward / TCP ends | ${ratio("up")}x | ${ratio("down")}x |`,
  ];
}
