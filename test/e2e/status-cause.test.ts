/**
 * `edgeport status` says why the pipe is down (issue 16, defect 10: the last cause is kept in the
 * state): here, a relay address with nothing behind it.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EDGEPORT, ensureBinary, spawnHost, stopProcess, until } from "../helpers/e2e.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-status-"));
let daemon: Bun.Subprocess | null = null;
afterAll(async () => {
  await stopProcess(daemon);
  rmSync(dir, { recursive: true, force: true });
});

test("status and /v1/debug/state name the last failure of a pipe that is down", async () => {
  await ensureBinary();
  const api = `unix://${join(dir, "api.sock")}`;
  const relay = join(dir, "nobody-here.sock");
  daemon = spawnHost(["run", "--relay", `unix://${relay}`, "--engine", "none", "--api", api], join(dir, "run.log"));
  const status = async () => {
    const p = Bun.spawn([EDGEPORT, "status", "--api", api], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const out = await new Response(p.stdout).text();
    await p.exited;
    return out;
  };
  let text = "";
  await until(async () => (text = await status()).includes("pipe:"), "the daemon to answer");
  expect(text).toMatch(
    new RegExp(`pipe: +DOWN \\(unix://${relay.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}\\): .*ENOENT`),
  );
  const p = Bun.spawn([EDGEPORT, "status", "--api", api, "--json"], { stdin: "ignore", stdout: "pipe" });
  const st = JSON.parse(await new Response(p.stdout).text());
  expect(st.pipe).toMatchObject({ up: false, lastFailure: expect.stringContaining("ENOENT") });
});
