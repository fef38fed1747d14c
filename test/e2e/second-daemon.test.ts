/**
 * Issue 20, item 1: a second `edgeport run` on the same control socket refuses to start, naming the
 * live daemon's pid and socket, and the first keeps its socket; a stale socket (its daemon was
 * killed, nobody answers) is replaced.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EDGEPORT, ensureBinary, hasLog, spawnHost, stopProcess, until } from "../helpers/e2e.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-second-"));
const api = `unix://${join(dir, "api", "control.sock")}`;
const args = [
  "run",
  "--relay",
  `unix://${join(dir, "nobody.sock")}`,
  "--engine",
  "none",
  "--firewall",
  "none",
  "--api",
  api,
];
const procs: Bun.Subprocess[] = [];

beforeAll(async () => {
  await ensureBinary();
});
afterAll(async () => {
  for (const p of procs) await stopProcess(p);
  rmSync(dir, { recursive: true, force: true });
});

const status = () => Bun.spawnSync([EDGEPORT, "status", "--json", "--api", api], { stdin: "ignore" });

test("a second daemon on a live daemon's socket refuses, naming its pid; the first keeps answering", async () => {
  const first = spawnHost(args, join(dir, "first.log"));
  procs.push(first);
  await until(() => hasLog(join(dir, "first.log"), /api unix:/), "the first daemon's start line");
  const second = Bun.spawnSync([EDGEPORT, ...args], { stdin: "ignore", timeout: 20_000 });
  const err = second.stderr.toString();
  expect(second.exitCode).toBe(1);
  expect(err).toContain(`another edgeport daemon (pid ${first.pid}) answers on ${api}`);
  // the first still owns the socket: status reaches it (exit 3: its pipe is down, as expected here)
  const st = status();
  expect(JSON.parse(st.stdout.toString()).api).toBe(api);
  expect(first.exitCode).toBeNull();
});

test("a stale socket (its daemon killed, nobody answers) is replaced", async () => {
  const first = procs[0]!;
  first.kill("SIGKILL");
  await first.exited;
  expect(existsSync(api.slice("unix://".length))).toBe(true); // left behind by the kill
  const third = spawnHost(args, join(dir, "third.log"));
  procs.push(third);
  await until(() => hasLog(join(dir, "third.log"), /api unix:/), "the new daemon's start line");
  expect(JSON.parse(status().stdout.toString()).api).toBe(api);
});
