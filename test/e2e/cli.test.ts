/** The compiled binary's command line: help, exit codes, errors that name the problem, signals. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuQuota } from "../../src/shared/spin.ts";
import { EDGEPORT, ensureBinary, hasLog, spawnHost, stopProcess, until, waitForListener } from "../helpers/e2e.ts";
import { freePortRange } from "../helpers/tcp-client.ts";

const run = (args: string[]) => {
  const r = Bun.spawnSync([EDGEPORT, ...args], { stdin: "ignore" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};
const dir = mkdtempSync(join(tmpdir(), "edgeport-cli-"));

beforeAll(async () => {
  await ensureBinary();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("help and version", () => {
  test.each([
    [[]],
    [["run"]],
    [["forwarder"]],
    [["publish"]],
    [["version"]],
    [["firewall"]],
    [["firewall", "ls"]],
    [["firewall", "prune"]],
    [["ls"]],
    [["unpublish"]],
    [["status"]],
  ])("edgeport %p --help", (cmd) => {
    const r = run([...cmd, "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("USAGE");
    if (cmd[0] === "publish") expect(r.out).toContain("--relay");
    if (cmd[0] === "forwarder") expect(r.out).toContain("--allow");
    if (cmd[0] === "run") expect(r.out).toContain("--binding");
  });
  test("edgeport version", () => {
    const r = run(["version", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({
      edgeport: "0.1.0",
      protocol: "https://github.com/moby/vpnkit multiplexer protocol",
    });
  });
});

describe("bad input exits 2 with a message naming the problem", () => {
  test.each([
    [
      ["publish", "--relay", "unix:///tmp/x.sock", "127.0.0.1:80x:1.2.3.4:80"],
      /bad spec "127\.0\.0\.1:80x:1\.2\.3\.4:80": host port "80x" is not a number 1-65535/,
    ],
    [
      ["publish", "--relay", "unix:///tmp/x.sock", "8080:1.2.3.4:80", "127.0.0.1:1-3:1.2.3.4:1-2"],
      /has 3 ports but target range "1-2" has 2/,
    ],
    [
      ["publish", "--relay", "http://x", "8080:1.2.3.4:80"],
      /bad relay URL "http:\/\/x": unknown scheme; accepted forms: unix:\/\/\/path/,
    ],
    [["publish", "--relay", "unix:///tmp/x.sock"], /Missing required positional argument: SPEC/],
    [["publish", "--relya", "x", "8080:1.2.3.4:80"], /unknown option --relya/],
    [
      ["publish", "--relay", "unix:///tmp/x.sock", "--window", "12", "8080:1.2.3.4:80"],
      /--window: "12" must be a whole number of bytes/,
    ],
    [
      ["forwarder", "--listen", "stdio:", "--window-max", "1e9"],
      /--window-max: "1e9" must be a whole number of bytes from 16384 to 16777216/,
    ],
    [
      ["publish", "--relay", "unix:///tmp/x.sock", "--window", "4194304", "--window-max", "1048576", "8080:1.2.3.4:80"],
      /--window-max \(1048576\) is smaller than --window \(4194304\); a window only grows/,
    ],
    [
      ["publish", "--relay", "unix:///tmp/x.sock", "--keepalive", "5 parsecs", "8080:1.2.3.4:80"],
      /--keepalive: "5 parsecs" is not a duration/,
    ],
    [
      ["publish", "--relay", "unix:///tmp/x.sock", "--token-file", "/nonexistent/token", "8080:1.2.3.4:80"],
      /--token-file: cannot read \/nonexistent\/token: ENOENT/,
    ],
    [["forwarder", "--listen", "exec:sh"], /exec: is for the host side/],
    [
      ["forwarder", "--listen", "stdio:", "--allow", "10.0.0.0/33"],
      /"10\.0\.0\.0\/33" is not a CIDR: prefix \/33 is longer than 32 bits/,
    ],
    [["forwarder", "--listen", "stdio:", "--log-level", "loud"], /--log-level: "loud" is not one of/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [
      ["run", "--relay", "unix:///tmp/x.sock", "--binding", "everywhere"],
      /--binding: "everywhere" is not one of open, local-default, local-only/,
    ],
    [
      ["run", "--relay", "unix:///tmp/x.sock", "--engine", "http://127.0.0.1:2375"],
      /engine URL "http:\/\/127\.0\.0\.1:2375" is not one of unix:\/\/\/path\/docker\.sock, tcp:\/\/HOST:PORT/,
    ],
    [["run", "--relay", "unix:///tmp/x.sock", "--resync", "5ms"], /--resync: 5 ms is too short/],
    [
      ["run", "--relay", "unix:///tmp/x.sock", "--firewall", "iptables"],
      /--firewall: "iptables" is not one of auto, nftables, windows, macos, none/,
    ],
    [["firewall"], /a subcommand is needed; one of ls, prune/],
    [["firewall", "flush"], /unknown subcommand "flush"; one of ls, prune/],
    [["firewall", "ls", "--firewall", "pf"], /--firewall: "pf" is not one of/],
    [
      ["run", "--relay", "unix:///tmp/x.sock", "--udp-idle", "10ms"],
      /--udp-idle: 10 ms is too short \(100 ms at least\)/,
    ],
    [
      ["publish", "--relay", "unix:///tmp/x.sock", "--udp-max-flows", "0", "53:1.2.3.4:53/udp"],
      /--udp-max-flows: "0" must be a whole number from 1 to 1000000/,
    ],
    [["publish", "--relay", "unix:///tmp/x.sock", "53:1.2.3.4:53/sctp"], /protocol "sctp" is not tcp or udp/],
  ])("edgeport %p", (args, message) => {
    const r = run(args);
    expect(r.err).toMatch(message);
    expect(r.code).toBe(2);
  });
});

describe("publish on the host", () => {
  test("a port in use is an error naming the address; the other specs still publish; SIGTERM ends it cleanly", async () => {
    const base = freePortRange(2);
    const held = Bun.listen({ hostname: "127.0.0.1", port: base, socket: { data() {} } });
    const log = join(dir, "publish-in-use.log");
    // the pipe is down (nothing listens there): listeners stay open regardless
    const p = spawnHost(
      [
        "publish",
        "--relay",
        `unix://${dir}/nobody.sock`,
        "--pipe-wait",
        "200ms",
        `127.0.0.1:${base}:172.17.0.2:80`,
        `127.0.0.1:${base + 1}:172.17.0.2:81`,
      ],
      log,
    );
    try {
      await waitForListener(base + 1);
      await until(
        () =>
          hasLog(
            log,
            new RegExp(
              `cannot listen on 127\\.0\\.0\\.1:${base}: the address is already in use by another listener \\(EADDRINUSE\\)`,
            ),
          ),
        "the bind error",
      );
      // the listener accepts a moment before its "published" line reaches the log file
      await until(
        () => hasLog(log, new RegExp(`published 127\\.0\\.0\\.1:${base + 1} -> 172\\.17\\.0\\.2:81/tcp`)),
        "the published line",
      );
      // the first dial runs beside the binds: its line can come a moment after theirs
      await until(() => hasLog(log, /pipe down: cannot connect to unix:.*nobody\.sock: ENOENT/), "the pipe-down line");
      // a client of the published port is reset after --pipe-wait, with the reason logged
      const s = await Bun.connect({ hostname: "127.0.0.1", port: base + 1, socket: { data() {}, close() {} } });
      void s;
      await until(() => hasLog(log, /reset: the pipe to unix:.* is down/), "the pipe-wait reset");
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
      // the port is free again
      const again = Bun.listen({ hostname: "127.0.0.1", port: base + 1, socket: { data() {} } });
      again.stop(true);
    } finally {
      held.stop(true);
      await stopProcess(p);
    }
  });

  test("without --relay and without a daemon: exit 1, saying so and how to start one", () => {
    for (const cmd of [["publish", "8080:1.2.3.4:80"], ["ls"], ["status"], ["unpublish", "abc"]]) {
      const r = run([...cmd, "--api", `unix://${dir}/no-daemon.sock`]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(
        `no edgeport daemon answers at unix://${dir}/no-daemon.sock (ENOENT); start one with: edgeport run --relay URL`,
      );
    }
    // a bad spec is refused before any daemon is asked
    const bad = run(["publish", "8080:1.2.3.4:0", "--api", `unix://${dir}/no-daemon.sock`]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/target port "0" is not a number 1-65535/);
  });

  test("a config file with an unknown key, or without a relay anywhere: exit 2 naming it", async () => {
    await Bun.write(`${dir}/bad.toml`, 'relay = "unix:///tmp/x.sock"\nbindng = "open"\n');
    const bad = run(["run", "--config", `${dir}/bad.toml`]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain(`--config ${dir}/bad.toml: unknown key "bindng"`);
    await Bun.write(`${dir}/norelay.json`, '{"binding":"open"}');
    const none = run(["run", "--config", `${dir}/norelay.json`]);
    expect(none.code).toBe(2);
    expect(none.err).toContain("--relay is missing");
  });

  test("nothing could be published: exit 1", async () => {
    const base = freePortRange(1);
    const held = Bun.listen({ hostname: "127.0.0.1", port: base, socket: { data() {} } });
    try {
      const r = run(["publish", "--relay", `unix://${dir}/nobody.sock`, `127.0.0.1:${base}:172.17.0.2:80`]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`cannot listen on 127.0.0.1:${base}: the address is already in use`);
      expect(r.err).toContain("nothing was published");
    } finally {
      held.stop(true);
    }
  });

  test("--spin 1ms: the compiled binary starts its lowest-priority thread and says so; --spin 1s is refused", async () => {
    const log = join(dir, "forwarder-spin.log");
    const f = spawnHost(["forwarder", "--listen", `unix://${dir}/spin.sock`, "--spin", "1ms"], log);
    try {
      const quota = cpuQuota(); // the same cgroup as the binary's
      if (quota) {
        // a machine whose cgroup has a CPU quota: edgeport must refuse to spin, and say why
        await until(() => hasLog(log, /^--spin: not spinning: this process runs under a CPU quota/), "the refusal");
      } else {
        await until(() => hasLog(log, /^--spin 1ms: a lowest-priority thread keeps a CPU busy/), "the spin line");
        const policy = (t: string) => {
          const st = readFileSync(`/proc/${f.pid}/task/${t}/stat`, "utf8");
          return st.slice(st.lastIndexOf(")") + 2).split(" ")[38];
        };
        const tasks = readdirSync(`/proc/${f.pid}/task`);
        // the spinning thread (and any thread it starts later) at SCHED_IDLE; the main thread not
        expect(tasks.filter((t) => policy(t) === "5").length).toBeGreaterThanOrEqual(1);
        expect(policy(String(f.pid))).toBe("0");
      }
    } finally {
      await stopProcess(f);
    }
    const bad = Bun.spawnSync([EDGEPORT, "forwarder", "--listen", `unix://${dir}/spin2.sock`, "--spin", "1s"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain("--spin: 1000 ms is too long");
  });

  test("the forwarder says so when nothing is allowed", async () => {
    const log = join(dir, "forwarder-nothing.log");
    const f = spawnHost(["forwarder", "--listen", `unix://${dir}/f.sock`], log);
    try {
      await until(() => hasLog(log, /nothing is allowed: every open will be refused/), "the warning");
    } finally {
      await stopProcess(f);
    }
  });
});
