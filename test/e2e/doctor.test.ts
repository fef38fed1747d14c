/**
 * `edgeport doctor` and `edgeport why` end to end: the compiled binary against the test bed's
 * dockerd, a forwarder in the VM and `edgeport run` on the host, all from one config file. Green
 * on a healthy setup; red with the right reason when a host port is held by another process, the
 * engine is down, the forwarder is down, or the pipe secret is wrong.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTestbed, type Testbed } from "../../scripts/testbed.ts";
import type { CheckResult } from "../../src/cli/doctor/check.ts";
import type { DaemonState } from "../../src/publisher/daemon.ts";
import { EDGEPORT, ensureBinary, hasLog, spawnHost, stopProcess, until, writeToken } from "../helpers/e2e.ts";
import { freePortRange } from "../helpers/tcp-client.ts";
import { UnixProxy } from "../helpers/unix-proxy.ts";

let tb: Testbed;
let fwd: Bun.Subprocess | null = null;
let daemon: Bun.Subprocess | null = null;
let engineProxy: UnixProxy;
let fwdSock: string;
let fwdLog: string;
let control: string;
let good: string;
let bad: string;
let base: number;
const web = ["httpd", "-f", "-p", "80", "-h", "/www"];

function config(path: string, tokenFile: string): string {
  const c = {
    relay: `unix://${fwdSock}`,
    engine: `unix://${engineProxy.path}`,
    "token-file": tokenFile,
    api: `unix://${control}`,
    firewall: "none",
    resync: "1s",
  };
  writeFileSync(path, JSON.stringify(c));
  return path;
}

function startForwarder(): Bun.Subprocess {
  const token = join(tb.dir, "token");
  const p = tb.spawnInVm(
    [
      EDGEPORT,
      "forwarder",
      "--listen",
      `unix://${fwdSock}`,
      "--engine",
      tb.dockerHost,
      "--token-file",
      token,
      "--log-format",
      "json",
    ],
    { logFile: fwdLog },
  );
  return p;
}

async function state(): Promise<DaemonState | null> {
  try {
    return (await (await fetch("http://localhost/v1/state", { unix: control } as RequestInit)).json()) as DaemonState;
  } catch {
    return null;
  }
}

async function edgeport(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([EDGEPORT, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

async function doctor(cfg = good, extra: string[] = []) {
  const r = await edgeport(["doctor", "--config", cfg, "--json", ...extra]);
  const body = JSON.parse(r.out) as { ok: boolean; checks: CheckResult[] };
  const byId = Object.fromEntries(body.checks.map((c) => [c.id, c]));
  return { ...r, ...body, byId };
}

beforeAll(async () => {
  await ensureBinary();
  tb = await startTestbed();
  fwdSock = join(tb.dir, "edgeport", "fwd.sock");
  fwdLog = join(tb.dir, "forwarder.log");
  control = join(tb.dir, "control", "control.sock");
  writeToken(join(tb.dir, "token"), "doctor-test-secret-0123456789");
  writeToken(join(tb.dir, "wrong-token"), "not-the-secret-9876543210");
  engineProxy = new UnixProxy(join(tb.dir, "engine-proxy.sock"), tb.dockerSock);
  engineProxy.start();
  good = config(join(tb.dir, "good.json"), join(tb.dir, "token"));
  bad = config(join(tb.dir, "bad.json"), join(tb.dir, "wrong-token"));
  fwd = startForwarder();
  await until(() => hasLog(fwdLog, /^listening on/), "the forwarder");
  base = freePortRange(4);
  await tb.dockerOk(["run", "-d", "--name", "web", "-p", `127.0.0.1:${base}:80`, "edgeport-busybox:test", ...web]);
  daemon = spawnHost(["run", "--config", good], join(tb.dir, "run.log"));
  await until(async () => (await state())?.ports.some((p) => p.status === "published") ?? false, "the web port");
}, 120_000);

afterAll(async () => {
  await stopProcess(daemon);
  await stopProcess(fwd);
  engineProxy?.stop();
  await tb?.stop();
}, 60_000);

describe("edgeport doctor", () => {
  test("healthy: every check passes, exit 0; why PORT prints the port's one line", async () => {
    const d = await doctor();
    expect(d.checks.filter((c) => c.verdict === "fail")).toEqual([]);
    expect(d.code).toBe(0);
    expect(d.ok).toBe(true);
    expect(d.byId.engine!.detail).toContain(`unix://${engineProxy.path} (from "engine" in ${good}) answers`);
    expect(d.byId.clock!.verdict).toBe("pass");
    expect(d.byId.daemon!.detail).toContain(`socket held by pid ${daemon!.pid} (edgeport)`);
    expect(d.byId["pipe.secret"]!.detail).toBe("the pipe secret was accepted");
    expect(d.byId["pipe.peer"]!.detail).toMatch(/^edgeport 0\.1\.0, window \d+ B, extensions /);
    expect(d.byId[`tcp:127.0.0.1:${base}`]).toMatchObject({
      verdict: "pass",
      detail: expect.stringContaining("container web"),
    });
    const text = await edgeport(["doctor", "--config", good]);
    expect(text.out).toMatch(/all \d+ checks pass\n$/);
    const why = await edgeport(["why", String(base), "--config", good]);
    expect(why.code).toBe(0);
    expect(why.out.trim()).toMatch(
      new RegExp(`^ok +tcp:127\\.0\\.0\\.1:${base} +container web -> 172\\.\\d+\\.\\d+\\.\\d+:80: published$`),
    );
  });

  test("a host port held by another process: red, naming its pid and program", async () => {
    const p = base + 1;
    const holder = Bun.spawn(
      [process.execPath, "-e", `Bun.listen({hostname:"127.0.0.1",port:${p},socket:{data(){}}}); console.log("up")`],
      { stdout: "pipe", stderr: "inherit" },
    );
    try {
      const reader = holder.stdout.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain("up");
      const program = readFileSync(`/proc/${holder.pid}/comm`, "utf8").trim(); // "bun", or "bun.exe" where bun is installed so
      expect(program).toMatch(/^bun/);
      await tb.dockerOk(["run", "-d", "--name", "blocked", "-p", `127.0.0.1:${p}:80`, "edgeport-busybox:test", ...web]);
      await until(
        async () => (await state())?.ports.some((x) => x.host === `127.0.0.1:${p}` && x.status === "failed") ?? false,
        "the failed bind",
      );
      const d = await doctor();
      expect(d.code).toBe(1);
      const line = d.byId[`tcp:127.0.0.1:${p}`]!;
      expect(line).toMatchObject({ verdict: "fail", code: "E_PORT_IN_USE" });
      expect(line.detail).toContain(`held by pid ${holder.pid} (${program}), uid 0 on 127.0.0.1:${p}`);
      expect(line.fix).toContain(`stop pid ${holder.pid} (${program})`);
      const why = await edgeport(["why", String(p), "--config", good]);
      expect(why.code).toBe(1);
      expect(why.out).toContain(`FAIL  tcp:127.0.0.1:${p}  container blocked`);
      expect(why.out).toContain(`held by pid ${holder.pid} (${program})`);
      expect(why.out).toContain("fix: stop pid");
    } finally {
      holder.kill();
      await holder.exited;
      await tb.dockerOk(["rm", "-f", "blocked"]);
    }
  });

  test("the engine is down: red on the engine, naming where its URL came from", async () => {
    engineProxy.stop();
    try {
      await until(async () => (await state())?.engine?.connected === false, "the daemon to lose the engine");
      const d = await doctor();
      expect(d.code).toBe(1);
      expect(d.byId.engine).toMatchObject({ verdict: "fail", code: "E_DIAL" });
      expect(d.byId.engine!.detail).toContain(`(from "engine" in ${good}) does not answer`);
      expect(d.byId["daemon.engine"]).toMatchObject({
        verdict: "fail",
        detail: expect.stringContaining("unreachable"),
      });
      // what the daemon still publishes is shown as it is
      expect(d.byId[`tcp:127.0.0.1:${base}`]!.verdict).toBe("pass");
      expect((await edgeport(["why", String(base + 3), "--config", good])).out).toContain(
        "cannot tell which container wants port",
      );
    } finally {
      engineProxy.start();
    }
    await until(async () => (await state())?.engine?.connected === true, "the engine back");
  });

  test("the forwarder is down: red on the pipe, both the trial session and the daemon's", async () => {
    await stopProcess(fwd);
    try {
      await until(async () => (await state())?.pipe.up === false, "the daemon to lose the pipe");
      const d = await doctor();
      expect(d.code).toBe(1);
      expect(d.byId["pipe.reach"]).toMatchObject({
        verdict: "fail",
        code: "E_DIAL",
        detail: expect.stringContaining("cannot connect"),
      });
      expect(d.byId["daemon.pipe"]).toMatchObject({ verdict: "fail", code: "E_PIPE_DOWN" });
      expect(d.byId["pipe.reach"]!.fix).toContain("start the forwarder");
    } finally {
      fwd = startForwarder();
    }
    await until(async () => (await state())?.pipe.up === true, "the pipe back", 15_000);
  });

  test("a wrong pipe secret: red on the secret, for the trial session and the daemon", async () => {
    await stopProcess(daemon);
    daemon = spawnHost(["run", "--config", bad], join(tb.dir, "run-bad.log"));
    await until(() => hasLog(join(tb.dir, "run-bad.log"), /^pipe down: /), "the daemon's failed authentication");
    const d = await doctor(bad);
    expect(d.code).toBe(1);
    expect(d.byId["pipe.reach"]!.verdict).toBe("pass");
    expect(d.byId["pipe.secret"]).toMatchObject({ verdict: "fail", code: "E_AUTH" });
    expect(d.byId["pipe.secret"]!.detail).toMatch(/^authentication failed: .*secrets differ/);
    // the daemon's own line says what its relay client logged (which end noticed first is a race)
    expect(d.byId["daemon.pipe"]).toMatchObject({ verdict: "fail", detail: expect.stringContaining("down (") });
    expect(d.err).toContain("checks failed: daemon.pipe, pipe.secret");
    // the good secret on the doctor's side, the daemon's still wrong: only the daemon's line is red
    const mixed = await doctor(bad, ["--token-file", join(tb.dir, "token")]);
    expect(mixed.byId["pipe.secret"]!.verdict).toBe("pass");
    expect(mixed.byId["daemon.pipe"]!.verdict).toBe("fail");
  });
});
