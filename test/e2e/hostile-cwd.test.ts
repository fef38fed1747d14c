/**
 * A hostile working directory (issue 16, defect 1): `bun build --compile` would load ./bunfig.toml
 * (its `preload` runs code, as root under sudo) and ./.env (EDGEPORT_API, DOCKER_HOST...) from the
 * directory edgeport starts in. The binary is built to read neither.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EDGEPORT, ensureBinary, stopProcess, until } from "../helpers/e2e.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-hostile-cwd-"));
const marker = join(dir, "preload-ran");
const evilApi = `unix://${join(dir, "evil-api.sock")}`;
const evilEngine = "tcp://127.0.0.66:2375";
// only what a shell always has: nothing the test runner set may stand in for the .env
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir };

beforeAll(async () => {
  await ensureBinary();
  writeFileSync(join(dir, "evil.ts"), `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "ran");\n`);
  writeFileSync(join(dir, "bunfig.toml"), 'preload = ["./evil.ts"]\n\n[run]\npreload = ["./evil.ts"]\n');
  writeFileSync(join(dir, ".env"), `EDGEPORT_API=${evilApi}\nDOCKER_HOST=${evilEngine}\nEDGEPORT_TEST_DOTENV=read\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a bunfig.toml preload in the working directory does not run", () => {
  const r = Bun.spawnSync([EDGEPORT, "version"], { cwd: dir, env, stdin: "ignore" });
  expect(r.exitCode).toBe(0);
  expect(r.stdout.toString()).toContain("edgeport ");
  expect(existsSync(marker)).toBe(false);
});

test("a .env in the working directory does not set EDGEPORT_API", () => {
  const r = Bun.spawnSync([EDGEPORT, "status"], { cwd: dir, env, stdin: "ignore" });
  const out = r.stdout.toString() + r.stderr.toString();
  expect(r.exitCode).toBe(1);
  expect(out).toContain("no edgeport daemon answers at unix://");
  expect(out).not.toContain(evilApi);
  expect(existsSync(marker)).toBe(false);
});

test("a .env in the working directory does not set DOCKER_HOST", async () => {
  const logFile = join(dir, "run.log");
  const fd = openSync(logFile, "a");
  const args = ["run", "--relay", `unix://${join(dir, "no-pipe.sock")}`, "--api", "none", "--firewall", "none"];
  const p = Bun.spawn([EDGEPORT, ...args, "--log-format", "json"], { cwd: dir, env, stdout: fd, stderr: fd });
  try {
    await until(() => readFileSync(logFile, "utf8").includes(", relay "), "the start line of edgeport run");
    const log = readFileSync(logFile, "utf8");
    expect(log).toContain("engine unix:///var/run/docker.sock");
    expect(log).not.toContain(evilEngine);
    expect(existsSync(marker)).toBe(false);
  } finally {
    await stopProcess(p);
  }
});
