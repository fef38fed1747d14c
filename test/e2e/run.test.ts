/**
 * `edgeport run` end to end: the compiled binary follows the real dockerd of the test bed and
 * publishes what containers publish, through the forwarder in the VM. Every case runs twice: with
 * the engine's socket opened by the host (--engine unix:///...), and with the engine through the
 * pipe (--engine vm:///...). For the second, the forwarder runs in a mount namespace of its own
 * where the engine's socket is bound at a path that does not exist in the host's filesystem: the
 * host side cannot open it itself, only ask the forwarder for a channel to it (and the forwarder
 * allows it with no --allow, being that socket's --engine).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { INDEX_HTML, startTestbed, type Testbed } from "../../scripts/testbed.ts";
import type { DaemonState } from "../../src/publisher/daemon.ts";
import { EDGEPORT, ensureBinary, hasLog, logLines, spawnHost, stopProcess, until } from "../helpers/e2e.ts";
import { canBind, freePortRange } from "../helpers/tcp-client.ts";
import { UnixProxy } from "../helpers/unix-proxy.ts";

type EngineMode = "unix" | "vm";
let tb: Testbed;
let fwd: Bun.Subprocess;
let daemon: Bun.Subprocess | null = null;
let fwdSock: string;
let fwdLog: string;
let runLog: string;
let control: string;
let base: number;
let engineProxy: UnixProxy;
/** the engine's socket (the proxy's) as the forwarder sees it; nothing is there in the host's view */
let vmEngine: string;
let mode: EngineMode;

const web = ["httpd", "-f", "-p", "80", "-h", "/www"];
const curl = (host: string, port: number) =>
  Bun.spawnSync([
    "curl",
    "-sS",
    "-m",
    "3",
    `http://${host.includes(":") ? `[${host}]` : host}:${port}/`,
  ]).stdout.toString();
async function state(): Promise<DaemonState> {
  const r = await fetch("http://localhost/v1/state", { unix: control } as RequestInit);
  return (await r.json()) as DaemonState;
}
const portState = async (host: string) => (await state()).ports.filter((p) => p.host === host);
/** a non-loopback address of this host, if it has one (connecting to it stays on this machine) */
const lanAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === "IPv4" && !a.internal)?.address;

function startDaemon(extra: string[] = [], binding = "local-default"): Bun.Subprocess {
  return spawnHost(
    [
      "run",
      "--engine",
      mode === "vm" ? `vm://${vmEngine}` : `unix://${engineProxy.path}`,
      "--relay",
      `unix://${fwdSock}`,
      "--resync",
      "1s",
      "--binding",
      binding,
      "--api",
      `unix://${control}`,
      "--firewall",
      "none",
      ...extra,
    ],
    runLog,
  );
}

/**
 * The forwarder in the VM's network namespace and a mount namespace of its own, where the engine's
 * directory is bound over an empty one: --engine names a socket only the forwarder can see.
 */
function startForwarder(): Bun.Subprocess {
  return tb.spawnInVm(
    [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      'mount --bind "$1" "$2" && shift 2 && exec "$@"',
      "sh",
      join(tb.dir, "engine"),
      join(tb.dir, "vm-only"),
      EDGEPORT,
      "forwarder",
      "--listen",
      `unix://${fwdSock}`,
      "--engine",
      `unix://${vmEngine}`,
      "--log-format",
      "json",
    ],
    { logFile: fwdLog },
  );
}

beforeAll(async () => {
  await ensureBinary();
  tb = await startTestbed();
  fwdSock = join(tb.dir, "edgeport", "fwd.sock");
  control = join(tb.dir, "control", "control.sock");
  fwdLog = join(tb.dir, "forwarder.log");
  mkdirSync(join(tb.dir, "engine"));
  mkdirSync(join(tb.dir, "vm-only"));
  engineProxy = new UnixProxy(join(tb.dir, "engine", "engine-proxy.sock"), tb.dockerSock);
  engineProxy.start();
  vmEngine = join(tb.dir, "vm-only", "engine-proxy.sock");
  fwd = startForwarder();
  await until(() => hasLog(fwdLog, /^listening on/), "the forwarder");
  expect(existsSync(vmEngine)).toBe(false); // the host cannot open it: it is not there
}, 120_000);

afterAll(async () => {
  await stopProcess(daemon);
  await stopProcess(fwd);
  engineProxy?.stop();
  await tb?.stop();
}, 60_000);

/** What only the engine through the pipe has: the pipe as the engine's outage, and its bad spellings. */
function vmOnlyCases(): void {
  test("the pipe goes down (forwarder stopped): one engine-outage line naming the pipe, ports kept; back up: the resync publishes a container started meanwhile", async () => {
    const p = base + 110;
    await tb.dockerOk(["run", "-d", "--name", "kept", "-p", `127.0.0.1:${p}:80`, "edgeport-busybox:test", ...web]);
    await until(() => curl("127.0.0.1", p) === INDEX_HTML, "kept published");
    const mark = logLines(runLog).length;
    const since = () => logLines(runLog).slice(mark);
    await stopProcess(fwd);
    try {
      await until(() => since().some((l) => /^engine vm:\/\/\S+ .*unreachable/.test(l.msg)), "the outage line");
      await tb.dockerOk([
        "run",
        "-d",
        "--name",
        "meanwhile",
        "-p",
        `127.0.0.1:${p + 1}:80`,
        "edgeport-busybox:test",
        ...web,
      ]);
      // the watcher retries (each asks for the pipe, which redials): several of them pass
      await until(() => since().filter((l) => /^pipe still down/.test(l.msg)).length >= 3, "several retries", 15_000);
      expect((await portState(`127.0.0.1:${p}`))[0]?.status).toBe("published");
      expect(canBind("127.0.0.1", p)).toBe(false); // kept, though nothing can be relayed now
      expect(canBind("127.0.0.1", p + 1)).toBe(true); // not seen while the pipe is down
      const outage = since().filter((l) => l.level === "warn" && /^engine .*unreachable/.test(l.msg));
      expect(outage.map((l) => l.msg)).toEqual([
        expect.stringMatching(
          new RegExp(
            // a stopped forwarder closes the pipe, or resets it when bytes were still unread in it
            `^engine vm://${vmEngine} unreachable: the pipe to unix://${fwdSock} is down \\((closed by the peer|pipe closed: ECONNRESET)\\)`,
          ),
        ),
      ]);
      expect((await state()).engine).toMatchObject({ connected: false, via: `through the pipe unix://${fwdSock}` });
    } finally {
      fwd = startForwarder();
    }
    await until(() => curl("127.0.0.1", p + 1) === INDEX_HTML, "the container started meanwhile", 15_000);
    expect(curl("127.0.0.1", p)).toBe(INDEX_HTML);
    expect((await state()).engine?.connected).toBe(true);
    const status = Bun.spawnSync([EDGEPORT, "status", "--api", `unix://${control}`]).stdout.toString();
    expect(status).toContain(`engine:  following vm://${vmEngine} through the pipe unix://${fwdSock}`);
    // not spawnSync: the engine's proxy runs in this process, and must go on answering meanwhile
    const doctor = Bun.spawn(
      [
        EDGEPORT,
        "doctor",
        "--engine",
        `vm://${vmEngine}`,
        "--relay",
        `unix://${fwdSock}`,
        "--api",
        `unix://${control}`,
        "--firewall",
        "none",
        "--json",
      ],
      { stderr: "ignore" },
    );
    const checks = (JSON.parse(await new Response(doctor.stdout).text()) as { checks: { id: string }[] }).checks;
    expect(checks.find((c) => c.id === "engine")).toMatchObject({
      verdict: "pass",
      detail: expect.stringContaining(`vm://${vmEngine} (from --engine) through the pipe unix://${fwdSock} answers`),
    });
    expect(checks.find((c) => c.id === "daemon.engine")).toMatchObject({
      verdict: "pass",
      detail: `following vm://${vmEngine} through the pipe unix://${fwdSock}`,
    });
    await tb.dockerOk(["rm", "-f", "kept", "meanwhile"]);
  });

  test.each([
    [
      ["vm://relative", "--relay", "unix:///nowhere.sock"],
      'engine URL "vm://relative": the path inside the VM must be absolute',
    ],
    [["vm:///", "--relay", "unix:///nowhere.sock"], 'engine URL "vm:///" names no socket inside the VM'],
    [
      ["vm:///x"],
      "the engine vm:///x (from --engine) is inside the VM and is reached through the pipe, but --relay is missing",
    ],
    [
      ["vm:///x", "--relay", "none"],
      "the engine vm:///x (from --engine) is inside the VM and is reached through the pipe, but --relay is none",
    ],
  ])("edgeport run --engine %p: exit 2 naming the problem", (args, message) => {
    const r = Bun.spawnSync([EDGEPORT, "run", "--engine", ...args, "--api", "none", "--firewall", "none"], {
      stdin: "ignore",
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain(message);
  });
}

describe.each(["unix", "vm"] as const)("--engine %s://", (m) => {
  beforeAll(() => {
    mode = m;
    base = freePortRange(120);
    runLog = join(tb.dir, `run-${m}.log`);
  });
  afterAll(async () => {
    await stopProcess(daemon);
    daemon = null;
    const left = (await tb.dockerOk(["ps", "-aq"])).split("\n").filter(Boolean);
    if (left.length) await tb.dockerOk(["rm", "-f", ...left]);
  }, 60_000);

  describe("edgeport run, --binding local-default", () => {
    test("a container started before edgeport run is published at start", async () => {
      const p = base;
      await tb.dockerOk(["run", "-d", "--name", "early", "-p", `127.0.0.1:${p}:80`, "edgeport-busybox:test", ...web]);
      daemon = startDaemon();
      await until(() => curl("127.0.0.1", p) === INDEX_HTML, "the early container on the host");
      expect((await state()).ports.find((x) => x.host === `127.0.0.1:${p}`)).toMatchObject({
        status: "published",
        container: "early",
        target: expect.stringMatching(/^172\.17\.0\.\d+:80$/),
      });
    });

    test("docker run -p P:80: published on 127.0.0.1 and ::1 only; docker stop frees the port at once", async () => {
      const p = base + 1;
      await tb.dockerOk(["run", "-d", "--name", "web1", "-p", `${p}:80`, "edgeport-busybox:test", ...web]);
      await until(() => curl("127.0.0.1", p) === INDEX_HTML && curl("::1", p) === INDEX_HTML, "both loopbacks");
      if (lanAddress) expect(canBind(lanAddress, p)).toBe(true); // not widened to the LAN
      expect((await portState(`127.0.0.1:${p}`))[0]?.status).toBe("published");
      await tb.dockerOk(["stop", "-t", "0", "web1"]);
      await until(() => canBind("127.0.0.1", p) && canBind("::1", p), "the port to be free again", 5000);
      expect(await portState(`127.0.0.1:${p}`)).toEqual([]);
    });

    test("docker run -P: the engine's random host port is published", async () => {
      await tb.dockerOk(["run", "-d", "--name", "random", "-P", "--expose", "80", "edgeport-busybox:test", ...web]);
      const hostPort = Number((await tb.dockerOk(["port", "random", "80/tcp"])).split("\n")[0]!.split(":").pop());
      expect(hostPort).toBeGreaterThan(0);
      await until(() => curl("127.0.0.1", hostPort) === INDEX_HTML, `the random port ${hostPort}`);
      await tb.dockerOk(["rm", "-f", "random"]);
      await until(() => canBind("127.0.0.1", hostPort), "the random port to be freed");
    });

    test("a 100-port range is published (200 listeners, both loopbacks) and freed", async () => {
      const p = base + 10;
      await tb.dockerOk([
        "run",
        "-d",
        "--name",
        "range",
        "-p",
        `${p}-${p + 99}:${p}-${p + 99}`,
        "edgeport-busybox:test",
        "sleep",
        "600",
      ]);
      await until(
        async () =>
          (await state()).ports.filter((x) => x.container === "range" && x.status === "published").length === 200,
        "200 listeners",
        10_000,
      );
      expect(canBind("127.0.0.1", p + 57)).toBe(false);
      await tb.dockerOk(["rm", "-f", "range"]);
      await until(async () => (await state()).ports.every((x) => x.container !== "range"), "the range to go", 10_000);
      expect(canBind("127.0.0.1", p + 57)).toBe(true);
    });

    test("a host port that cannot be bound is reported with its cause, retried at resync, and never disturbs the others", async () => {
      const p = base + 2;
      const held = Bun.listen({ hostname: "127.0.0.1", port: p, socket: { data() {} } });
      await tb.dockerOk([
        "run",
        "-d",
        "--name",
        "busy",
        "-p",
        `127.0.0.1:${p}:80`,
        "-p",
        `127.0.0.1:${p + 1}:80`,
        "-p",
        `172.17.0.1:${p + 2}:80`,
        "edgeport-busybox:test",
        ...web,
      ]);
      await until(() => curl("127.0.0.1", p + 1) === INDEX_HTML, "the other port");
      await until(async () => (await portState(`127.0.0.1:${p}`))[0]?.status === "failed", "the failure in the state");
      expect((await portState(`127.0.0.1:${p}`))[0]).toMatchObject({
        code: "E_PORT_IN_USE",
        error: expect.stringContaining("the address is already in use"),
      });
      await until(
        async () => (await portState(`172.17.0.1:${p + 2}`))[0]?.code === "E_ADDR_NOT_AVAILABLE",
        "the foreign address failure",
      );
      expect(
        hasLog(
          runLog,
          new RegExp(`container busy: cannot listen on 127\\.0\\.0\\.1:${p}: the address is already in use`),
        ),
      ).toBe(true);
      // logged once, though retried at every resync: wait for two more resyncs (lists) to complete
      const lists = () => engineProxy.requests.filter((r) => r.includes("/containers/json")).length;
      const seen = lists();
      await until(() => lists() >= seen + 3, "two more resyncs");
      expect(logLines(runLog).filter((l) => l.msg.includes(`cannot listen on 127.0.0.1:${p}:`)).length).toBe(1);
      held.stop(true);
      await until(() => curl("127.0.0.1", p) === INDEX_HTML, "the port published at the next resync", 5000);
      await tb.dockerOk(["rm", "-f", "busy"]);
    });

    test("the engine goes away: ports stay published, one log line; it comes back: missed changes are applied", async () => {
      const p = base + 5;
      await tb.dockerOk([
        "run",
        "-d",
        "--name",
        "survivor",
        "-p",
        `127.0.0.1:${p}:80`,
        "edgeport-busybox:test",
        ...web,
      ]);
      await tb.dockerOk([
        "run",
        "-d",
        "--name",
        "leaver",
        "-p",
        `127.0.0.1:${p + 1}:80`,
        "edgeport-busybox:test",
        ...web,
      ]);
      await until(
        () => curl("127.0.0.1", p) === INDEX_HTML && curl("127.0.0.1", p + 1) === INDEX_HTML,
        "both published",
      );
      const mark = logLines(runLog).length;
      engineProxy.stop(); // the engine is unreachable for edgeport; dockerd and the containers run on
      try {
        await until(
          () =>
            logLines(runLog)
              .slice(mark)
              .some((l) => /engine .* unreachable/.test(l.msg)),
          "the unreachable line",
        );
        await tb.dockerOk(["rm", "-f", "leaver"]); // a change edgeport cannot see now
        await Bun.sleep(1500); // several retries
        expect(curl("127.0.0.1", p)).toBe(INDEX_HTML); // still published and relaying
        expect(canBind("127.0.0.1", p + 1)).toBe(false); // nothing is flushed while blind
        expect(
          logLines(runLog)
            .slice(mark)
            .filter((l) => l.level === "warn" && /unreachable/.test(l.msg)).length,
        ).toBe(1);
      } finally {
        engineProxy.start();
      }
      await until(
        () =>
          logLines(runLog)
            .slice(mark)
            .some((l) => /^following engine/.test(l.msg)),
        "the reconnect",
        10_000,
      );
      await until(() => canBind("127.0.0.1", p + 1), "the leaver's port freed by the resync", 5000);
      expect(curl("127.0.0.1", p)).toBe(INDEX_HTML);
      expect((await state()).engine?.connected).toBe(true);
      await tb.dockerOk(["rm", "-f", "survivor"]);
    });
  });

  describe("edgeport run, --binding local-only", () => {
    test("a non-loopback request is narrowed with a warning; two containers on one host address: the first keeps it", async () => {
      await stopProcess(daemon);
      const p = base + 6;
      daemon = startDaemon([], "local-only");
      await until(async () => {
        try {
          return (await state()).binding === "local-only";
        } catch {
          return false;
        }
      }, "the local-only daemon");
      await tb.dockerOk(["run", "-d", "--name", "first", "-p", `127.0.0.1:${p}:80`, "edgeport-busybox:test", ...web]);
      await until(() => curl("127.0.0.1", p) === INDEX_HTML, "first on loopback");
      // a second container asks for the same port on another address of the VM: narrowed to the same host address
      await tb.dockerOk(["run", "-d", "--name", "second", "-p", `172.17.0.1:${p}:80`, "edgeport-busybox:test", ...web]);
      await until(
        () =>
          hasLog(
            runLog,
            new RegExp(
              `container second: 80/tcp asks for 172\\.17\\.0\\.1:${p}; --binding local-only publishes it on 127\\.0\\.0\\.1 instead`,
            ),
          ),
        "the warning",
      );
      if (lanAddress) expect(canBind(lanAddress, p)).toBe(true);
      await until(
        async () => (await state()).ports.some((x) => x.container === "second" && x.status === "conflict"),
        "the conflict",
      );
      const first = (await portState(`127.0.0.1:${p}`)).find((x) => x.status === "published");
      expect(first?.container).toBe("first");
      expect(
        hasLog(
          runLog,
          new RegExp(`container second: tcp:127\\.0\\.0\\.1:${p} is already published for container first`),
        ),
      ).toBe(true);
    });
  });

  if (m === "vm") vmOnlyCases();
});
