/**
 * The daemon's control API on its default named pipe (\\.\pipe\edgeport-control), driven by a
 * second Windows process: `edgeport.exe status / publish / ls / unpublish`, and the error when no
 * daemon answers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prngStream } from "../e2e/fixtures/prng.ts";
import { until, waitForListener } from "../helpers/e2e.ts";
import { canBind, freePortRange } from "../helpers/tcp-client.ts";
import { ctrlC, download, kill, runWin, sha, spawnWin, startDestination, waitLog } from "../helpers/wine.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-wine-api-"));
const pipe = `npipe:////./pipe/edgeport-test-api-${process.pid}`;
const dest = startDestination();
const port = freePortRange(1);
const spec = `127.0.0.1:${port}:127.0.0.1:${dest.port}`;
let fwd: Bun.Subprocess | null = null;
let daemon: Bun.Subprocess | null = null;
const runLog = join(dir, "run.log");

beforeAll(async () => {
  const fwdLog = join(dir, "forwarder.log");
  fwd = spawnWin(["forwarder", "--listen", pipe, "--allow", "127.0.0.1/32"], fwdLog);
  await waitLog(fwdLog, /^listening on npipe:/, "the Windows forwarder to listen");
});

afterAll(async () => {
  await kill(daemon);
  await kill(fwd);
  dest.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("control API on the default named pipe", () => {
  test("with no daemon, status and ls say that no daemon answers at the default pipe, exit 1", async () => {
    for (const cmd of ["status", "ls"]) {
      const r = await runWin([cmd]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        /no edgeport daemon answers at npipe:\/\/\/\/\.\/pipe\/edgeport-control \(\w+\); start one with/,
      );
    }
  });

  test("edgeport run serves it; status, publish, ls, unpublish from a second process", async () => {
    daemon = spawnWin(["run", "--relay", pipe, "--engine", "none", "--firewall", "none"], runLog);
    await waitLog(runLog, /api npipe:\/\/\/\/\.\/pipe\/edgeport-control/, "the daemon's API");
    await waitLog(runLog, /^pipe up: npipe:/, "the daemon's pipe up");

    const st = await runWin(["status"]);
    expect(st.err).toBe("");
    expect(st.code).toBe(0);
    expect(st.out).toContain("daemon:  up (npipe:////./pipe/edgeport-control)");
    expect(st.out).toMatch(/pipe: {4}up, /);

    const pub = await runWin(["publish", spec]);
    expect(pub.code).toBe(0);
    expect(pub.out).toContain(`published: 127.0.0.1:${port}->127.0.0.1:${dest.port}/tcp`);
    await waitForListener(port);
    const got = await download(port, 1 << 20, 21);
    expect(got.sha).toBe(sha(prngStream(21), 1 << 20));

    const ls = await runWin(["ls"]);
    expect(ls.code).toBe(0);
    expect(ls.out).toContain(`127.0.0.1:${port}->127.0.0.1:${dest.port}/tcp`);
    expect(ls.out).toContain("listening");

    const bad = await runWin(["publish", "127.0.0.1:99999:127.0.0.1:1"]);
    expect(bad.code).toBe(2);

    const un = await runWin(["unpublish", spec]);
    expect(un.code).toBe(0);
    expect(un.out).toContain(`${spec}: unpublished`);
    await until(() => canBind("127.0.0.1", port), "the port to be free again");
    expect((await runWin(["ls"])).out).toContain("no ports published");
  });

  test("Ctrl-C stops the daemon with exit 0, and the pipe no longer answers", async () => {
    expect(await ctrlC(daemon!)).toBe(0);
    const r = await runWin(["status"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("no edgeport daemon answers");
  });
});
