/** The daemon lines, the firewall line and the checklist's text form, with injected facts and a fake command runner. */
import { describe, expect, test } from "bun:test";
import { formatResults } from "../../../src/cli/doctor/check.ts";
import { daemonChecks } from "../../../src/cli/doctor/daemon.ts";
import { firewallCheck } from "../../../src/cli/doctor/firewall.ts";
import type { Runner } from "../../../src/firewall/types.ts";
import type { DaemonState } from "../../../src/publisher/daemon.ts";

const state = (o: Partial<DaemonState> = {}): DaemonState => ({
  engine: { url: "unix:///e.sock", connected: true },
  pipe: { url: "unix:///fwd.sock", up: true, peer: "edgeport peer 0.1.0" },
  binding: "local-default",
  udp: { idleMs: 1000, maxFlows: 10 },
  containers: 1,
  ports: [],
  ...o,
});
const base = { api: "unix:///run/edgeport/control.sock", engineUrl: "unix:///e.sock" };
const v = (r: ReturnType<typeof daemonChecks>) => r.map((x) => `${x.id}=${x.verdict}`);

describe("daemon lines", () => {
  test("up, pipe up, following the same engine; whose socket it is", () => {
    const r = daemonChecks({ ...base, state: state(), owner: { pid: 77, program: "edgeport", uid: 0 } });
    expect(v(r)).toEqual(["daemon=pass", "daemon.pipe=pass", "daemon.engine=pass"]);
    expect(r[0]!.detail).toBe(
      "edgeport run answers at unix:///run/edgeport/control.sock, socket held by pid 77 (edgeport), uid 0",
    );
  });
  test("none answers; or a process holds the socket but does not answer", () => {
    expect(v(daemonChecks({ ...base, error: "ENOENT" }))).toEqual([
      "daemon=fail",
      "daemon.pipe=skip",
      "daemon.engine=skip",
    ]);
    const [held] = daemonChecks({ ...base, error: "timeout", owner: { pid: 5, program: "socat" } });
    expect(held!.detail).toContain("the socket is held by pid 5 (socat), which does not answer");
  });
  test("pipe down: the daemon's last pipe warning is the reason; a secret mismatch is E_AUTH", () => {
    const events = [
      { level: "info", msg: "pipe up: x" },
      {
        level: "warn",
        tag: "pipe",
        msg: "pipe down: authentication failed: the pipe secrets differ; redialling with backoff up to 1000 ms",
      },
    ];
    const r = daemonChecks({ ...base, state: { ...state({ pipe: { url: "unix:///fwd.sock", up: false } }), events } });
    expect(r[1]).toMatchObject({
      verdict: "fail",
      code: "E_AUTH",
      detail: expect.stringContaining("the pipe secrets differ"),
    });
    const refused = daemonChecks({
      ...base,
      state: {
        ...state({ pipe: { url: "unix:///fwd.sock", up: false } }),
        events: [{ level: "warn", msg: "pipe down: cannot connect to unix:///fwd.sock: ECONNREFUSED" }],
      },
    });
    expect(refused[1]).toMatchObject({ code: "E_PIPE_DOWN", detail: expect.stringContaining("ECONNREFUSED") });
  });
  test("engine: not connected (with the reason), another engine than doctor's (warn), none (skip)", () => {
    const events = [
      { level: "warn", tag: "run", msg: "engine unix:///e.sock unreachable: ECONNREFUSED; keeping what is published" },
    ];
    const down = daemonChecks({
      ...base,
      state: { ...state({ engine: { url: "unix:///e.sock", connected: false } }), events },
    });
    expect(down[2]).toMatchObject({ verdict: "fail", detail: expect.stringContaining("unreachable: ECONNREFUSED") });
    expect(daemonChecks({ ...base, engineUrl: "unix:///other.sock", state: state() })[2]!.verdict).toBe("warn");
    expect(daemonChecks({ ...base, state: state({ engine: null }) })[2]!.verdict).toBe("skip");
  });
});

describe("firewall line", () => {
  const deps = (run: Runner, o: object = {}) => ({
    mode: "auto" as const,
    run,
    platform: "linux",
    uid: 0,
    env: {},
    exists: () => true,
    program: "/usr/local/bin/edgeport",
    ...o,
  });
  const ok: Runner = async () => ({ code: 0, stdout: '{"nftables":[]}', stderr: "" });
  test("nftables: nft --check of a batch, never a change", async () => {
    const calls: { argv: string[]; mutates?: boolean }[] = [];
    const run: Runner = async (argv, o) => {
      calls.push({ argv, mutates: o?.mutates });
      return ok(argv);
    };
    const r = await firewallCheck(deps(run));
    expect(r).toMatchObject({
      verdict: "pass",
      detail: expect.stringContaining("--firewall auto chose nftables, which can write"),
    });
    expect(calls[0]).toEqual({ argv: ["/usr/sbin/nft", "--check", "-f", "-"], mutates: false });
    expect(calls.every((c) => !c.mutates)).toBe(true);
  });
  test("nftables refused: fail with nft's words", async () => {
    const run: Runner = async () => ({
      code: 1,
      stdout: "",
      stderr: "Error: Could not process rule: Operation not permitted\n",
    });
    const r = await firewallCheck(deps(run, { mode: "nftables", uid: 1000 }));
    expect(r).toMatchObject({
      verdict: "fail",
      code: "E_PERMISSION",
      detail: expect.stringContaining("Operation not permitted"),
    });
  });
  test.each([
    [{ platform: "linux", uid: 1000 }, "pass", "auto chose none"],
    [{ platform: "darwin", uid: 501 }, "fail", "socketfilterfw changes need root"],
    [{ platform: "darwin", uid: 0 }, "pass", "which can write"],
    [{ mode: "none" }, "pass", "writes no firewall rules"],
  ])("%o: %s", async (o, verdict, text) => {
    const r = await firewallCheck(deps(ok, o));
    expect(r.verdict).toBe(verdict as never);
    expect(r.detail).toContain(text);
  });
  test("windows: an administrator or not", async () => {
    const admin: Runner = async (argv) => ({
      code: 0,
      stdout: argv.at(-1)!.includes("IsInRole") ? "True\r\n" : "",
      stderr: "",
    });
    expect((await firewallCheck(deps(admin, { platform: "win32" }))).verdict).toBe("pass");
    const user: Runner = async () => ({ code: 0, stdout: "False\r\n", stderr: "" });
    expect((await firewallCheck(deps(user, { platform: "win32" }))).detail).toContain("not an administrator");
  });
});

test("text form: a line a check, the fix under it, a summary", () => {
  const text = formatResults([
    { id: "engine", verdict: "pass", detail: "answers" },
    { id: "tcp:127.0.0.1:80", verdict: "fail", detail: "held by pid 1 (x)", fix: "stop it" },
  ]);
  expect(text.split("\n")).toEqual([
    "ok    engine            answers",
    "FAIL  tcp:127.0.0.1:80  held by pid 1 (x)",
    "                        fix: stop it",
    "1 of 2 checks failed: tcp:127.0.0.1:80",
  ]);
});
