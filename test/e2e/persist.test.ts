/**
 * Issue 20, item 3, with the real binary on loopback: ad-hoc ports published through the daemon
 * survive its restart (SIGTERM, start again: back and reachable through the relay, `ls` says
 * persisted); an unpublished one stays gone; a restored spec whose port is taken now is kept and
 * retried; a hostile state directory is refused; a corrupt state file is kept aside and the daemon
 * starts with nothing restored; the file is only ever replaced whole.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EDGEPORT, echoOnce, ensureBinary, hasLog, spawnHost, stopProcess, until } from "../helpers/e2e.ts";
import { canBind, freePortRange } from "../helpers/tcp-client.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-persist-"));
const api = `unix://${join(dir, "api", "control.sock")}`;
const state = join(dir, "state");
const fwd = join(dir, "fwd.sock");
let base: number;
let forwarder: Bun.Subprocess;
let daemon: Bun.Subprocess | null = null;
let starts = 0;
const echo: { stop(c?: boolean): void; port: number }[] = [];
const spec = (i: number) => `127.0.0.1:${base + i}:127.0.0.1:${echo[i % 2]!.port}`;
const runArgs = (stateDir = state, more: string[] = []) => [
  "run",
  "--relay",
  `unix://${fwd}`,
  "--engine",
  "none",
  "--firewall",
  "none",
  "--api",
  api,
  "--state-dir",
  stateDir,
  "--resync",
  "300ms",
  ...more,
];
const cli = (args: string[]) => {
  const r = Bun.spawnSync([EDGEPORT, ...args, "--api", api], { stdin: "ignore" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};
type Row = { id: string; ports: string; source: string; persisted: boolean; status: string };
const ls = (): Row[] => JSON.parse(cli(["ls", "--json"]).out);
const stateFile = () => join(state, readdirSync(state).find((f) => /^ports(-[0-9a-f]{12})?\.json$/.test(f))!);

/** Starts the daemon; resolves once its API answers. Its log: run-N.log. */
async function startDaemon(): Promise<string> {
  const log = join(dir, `run-${++starts}.log`);
  daemon = spawnHost(runArgs(), log);
  await until(() => hasLog(log, /pipe up/), "the daemon's pipe", 15_000);
  return log;
}
const stopDaemon = async () => {
  await stopProcess(daemon, "SIGTERM");
  expect(daemon!.exitCode).toBe(0);
  daemon = null;
};

beforeAll(async () => {
  await ensureBinary();
  base = freePortRange(6);
  for (let i = 0; i < 2; i++)
    echo.push(
      Bun.listen({
        hostname: "127.0.0.1",
        port: 0,
        socket: { data: (s, d) => void s.write(d), end: (s) => void s.end() },
      }),
    );
  forwarder = spawnHost(["forwarder", "--listen", `unix://${fwd}`, "--allow", "127.0.0.0/8"], join(dir, "fwd.log"));
  await until(() => hasLog(join(dir, "fwd.log"), /^listening on/), "the forwarder");
});
afterAll(async () => {
  await stopProcess(daemon);
  await stopProcess(forwarder);
  for (const e of echo) e.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe("ad-hoc ports across a daemon restart", () => {
  test("two published specs come back after SIGTERM and a new start, reachable through the relay; ls says persisted", async () => {
    await startDaemon();
    expect(cli(["publish", spec(0), spec(1)]).code).toBe(0);
    expect(await echoOnce(base)).toBe(true);
    expect(ls().map((r) => [r.source, r.persisted])).toEqual([
      ["ad-hoc", true],
      ["ad-hoc", true],
    ]);
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(statSync(stateFile()).mode & 0o777).toBe(0o600);
    expect(readdirSync(state)).toHaveLength(1); // no temp file left behind
    await stopDaemon();
    expect(canBind("127.0.0.1", base) && canBind("127.0.0.1", base + 1)).toBe(true);
    const log = await startDaemon();
    await until(async () => (await echoOnce(base, "a")) && (await echoOnce(base + 1, "b")), "both ports back", 10_000);
    expect(hasLog(log, new RegExp(`published ${spec(0)} \\(restored from ${stateFile()}\\)`))).toBe(true);
    const table = cli(["ls"]).out;
    expect(table).toContain("ad-hoc (persisted)");
    expect(ls().map((r) => [r.ports, r.status, r.persisted])).toEqual([
      [`127.0.0.1:${base}->127.0.0.1:${echo[0]!.port}/tcp`, "published", true],
      [`127.0.0.1:${base + 1}->127.0.0.1:${echo[1]!.port}/tcp`, "published", true],
    ]);
  });

  test("an unpublished spec stays gone after a restart; the other comes back", async () => {
    expect(cli(["unpublish", spec(0)]).code).toBe(0);
    expect(JSON.parse(readFileSync(stateFile(), "utf8")).ports).toEqual([{ spec: spec(1) }]);
    await stopDaemon();
    await startDaemon();
    await until(() => echoOnce(base + 1), "the kept port back", 10_000);
    expect(canBind("127.0.0.1", base)).toBe(true);
    expect(ls().map((r) => r.ports)).toEqual([`127.0.0.1:${base + 1}->127.0.0.1:${echo[1]!.port}/tcp`]);
  });

  test("a restored spec whose port is taken now is reported failed, kept in the file, and published once the port is free", async () => {
    await stopDaemon();
    const held = Bun.listen({ hostname: "127.0.0.1", port: base + 1, socket: { data() {} } });
    let released = false;
    try {
      const log = await startDaemon();
      await until(() => ls().some((r) => r.status === "failed"), "the failed row");
      expect(ls()[0]).toMatchObject({ source: "ad-hoc", persisted: true });
      expect(hasLog(log, /is wanted but not published: cannot listen on 127\.0\.0\.1:/)).toBe(true);
      expect(JSON.parse(readFileSync(stateFile(), "utf8")).ports).toEqual([{ spec: spec(1) }]);
      held.stop(true);
      released = true;
      await until(() => echoOnce(base + 1), "published at a resync once the port is free", 10_000);
    } finally {
      if (!released) held.stop(true);
    }
  });

  test("publish and unpublish 15 times: the daemon's fds return to where they were, and no temp file is left", async () => {
    const fds = () => readdirSync(`/proc/${daemon!.pid}/fd`).length;
    const before = fds();
    for (let i = 0; i < 15; i++) {
      expect(cli(["publish", spec(2)]).code).toBe(0);
      expect(cli(["unpublish", spec(2)]).code).toBe(0);
    }
    await until(() => fds() <= before, `fds back to ${before} (or fewer)`);
    expect(readdirSync(state).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });
});

describe("hostile and corrupt state", () => {
  test.each([
    ["world-writable", (d: string) => chmodSync(d, 0o777), /is open to group or others \(mode 0777\)/],
    ["nobody-owned", (d: string) => chownSync(d, 65534, 65534), /belongs to uid 65534, not to uid 0/],
  ])("the state directory %s is refused, naming it; the daemon does not start", (name, spoil, re) => {
    const bad = join(dir, `bad-${name.replace(/\W/g, "")}`);
    mkdirSync(bad, { mode: 0o700 });
    spoil(bad);
    const r = Bun.spawnSync([EDGEPORT, ...runArgs(bad, ["--api", `unix://${join(dir, "api2", "c.sock")}`])], {
      stdin: "ignore",
      timeout: 15_000,
    });
    expect(r.exitCode).toBe(1);
    const err = r.stderr.toString();
    expect(err).toContain(bad);
    expect(err).toMatch(re);
  });

  test("a corrupt state file: an error naming it and what is wrong, kept aside as .bad-<time>, nothing restored", async () => {
    await stopDaemon();
    const path = stateFile();
    writeFileSync(path, '{"version":1,"ports":[{"spec":');
    const log = await startDaemon();
    expect(hasLog(log, new RegExp(`state file ${path}: it is not valid JSON .*; kept aside as ${path}\\.bad-`))).toBe(
      true,
    );
    expect(ls()).toEqual([]);
    const aside = readdirSync(state).filter((f) => f.includes(".bad-"));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(state, aside[0]!), "utf8")).toBe('{"version":1,"ports":[{"spec":');
    // the daemon carries on: a new publish is kept in a new file, the bad one left alone
    expect(cli(["publish", spec(3)]).code).toBe(0);
    expect(JSON.parse(readFileSync(path, "utf8")).ports).toEqual([{ spec: spec(3) }]);
    expect(existsSync(join(state, aside[0]!))).toBe(true);
  });
});
