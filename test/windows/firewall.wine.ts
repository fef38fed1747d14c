/**
 * --firewall auto on Windows where PowerShell is absent: one warning naming what is missing, and
 * publishing carries on. Wine ships a powershell.exe stub that runs nothing and exits 0; this file
 * removes it from the throwaway prefix, which makes the prefix a Windows without PowerShell. What the Windows backend would run is checked by the pure
 * tests (test/firewall); here --firewall windows --firewall-dry-run shows it under the real
 * executable path Windows gives the running binary.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { logLines, until, waitForListener } from "../helpers/e2e.ts";
import { freePortRange } from "../helpers/tcp-client.ts";
import {
  ctrlC,
  download,
  EXE,
  kill,
  PREFIX,
  runWin,
  spawnWin,
  startDestination,
  waitLog,
  zPath,
} from "../helpers/wine.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-wine-firewall-"));
const name = `edgeport-test-fw-${process.pid}`;
const pipe = `npipe:////./pipe/${name}`;
const dest = startDestination();
let fwd: Bun.Subprocess | null = null;
const started: Bun.Subprocess[] = [];

beforeAll(async () => {
  rmSync(join(PREFIX, "drive_c/windows/system32/WindowsPowerShell/v1.0/powershell.exe"), { force: true });
  const log = join(dir, "fwd.log");
  fwd = spawnWin(["forwarder", "--listen", pipe, "--allow", "127.0.0.1/32"], log);
  await waitLog(log, /^listening on npipe:/, "the forwarder to listen");
});

afterAll(async () => {
  for (const p of started) await kill(p);
  await kill(fwd);
  dest.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a daemon with these firewall flags, publishes one non-loopback port through its API. */
async function daemonWithPort(flags: string[], tag: string) {
  const log = join(dir, `${tag}.log`);
  const api = `npipe:////./pipe/${name}-${tag}`;
  const p = spawnWin(["run", "--relay", pipe, "--engine", "none", "--api", api, ...flags], log);
  started.push(p);
  await waitLog(log, /^pipe up: npipe:/, "the daemon's pipe up");
  const port = freePortRange(1);
  const r = await runWin(["publish", "--api", api, `0.0.0.0:${port}:127.0.0.1:${dest.port}`]);
  expect(r.code).toBe(0);
  await waitForListener(port);
  return { p, log, port };
}

test("--firewall auto without PowerShell: one warning naming it, and the port is published", async () => {
  const d = await daemonWithPort([], "auto");
  expect((await download(d.port, 10_000, 2)).received).toBe(10_000);
  expect(await ctrlC(d.p)).toBe(0);
  const warnings = logLines(d.log).filter((l) => l.level === "warn" || l.level === "error");
  expect(warnings.map((w) => w.msg)).toEqual([
    expect.stringMatching(/PowerShell.*C:\\windows\\System32\\WindowsPowerShell\\v1\.0\\powershell\.exe/i),
  ]);
});

test("--firewall windows --firewall-dry-run: the rule names this executable by its Windows path", async () => {
  const d = await daemonWithPort(["--firewall", "windows", "--firewall-dry-run"], "dry");
  await until(() => logLines(d.log).some((l) => l.msg.includes("New-NetFirewallRule")), "the dry-run command");
  const line = logLines(d.log).find((l) => l.msg.includes("New-NetFirewallRule"))!.msg;
  expect(line).toContain(`-LocalPort '\\''${d.port}'\\''`); // in the dry run's shell quoting
  expect(line).toContain(`-Program '\\''${zPath(EXE)}'\\''`);
  expect(await ctrlC(d.p)).toBe(0);
});
