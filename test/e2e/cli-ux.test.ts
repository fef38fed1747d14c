/**
 * The operator CLI as a new user meets it (issue 20), against real daemons of the compiled binary
 * on loopback: a forwarder and `edgeport run --engine none` with its pipe up, and a second daemon
 * whose pipe is down. Publishing several specs, exit codes, `ls`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EDGEPORT, ensureBinary, hasLog, logLines, spawnHost, stopProcess, until } from "../helpers/e2e.ts";
import { canBind, freePortRange } from "../helpers/tcp-client.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-cli-ux-"));
const upApi = join(dir, "up", "api.sock");
const downApi = join(dir, "down", "api.sock");
const procs: Bun.Subprocess[] = [];
let base: number;

const cli = (args: string[], api = upApi) => {
  const r = Bun.spawnSync([EDGEPORT, ...args, "--api", `unix://${api}`], { stdin: "ignore" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};
const daemon = (name: string, relay: string, api: string) =>
  spawnHost(
    ["run", "--relay", relay, "--engine", "none", "--firewall", "none", "--api", `unix://${api}`],
    join(dir, `${name}.log`),
  );

beforeAll(async () => {
  await ensureBinary();
  base = freePortRange(40);
  const fwd = join(dir, "fwd.sock");
  procs.push(spawnHost(["forwarder", "--listen", `unix://${fwd}`, "--allow", "127.0.0.0/8"], join(dir, "fwd.log")));
  procs.push(daemon("up", `unix://${fwd}`, upApi));
  procs.push(daemon("down", `unix://${dir}/nobody.sock`, downApi));
  await until(() => hasLog(join(dir, "up.log"), /pipe up/i), "the first daemon's pipe", 15_000);
  await until(() => cli(["ls"], downApi).code === 0, "the second daemon's API", 15_000);
});
afterAll(async () => {
  for (const p of procs) await stopProcess(p);
  rmSync(dir, { recursive: true, force: true });
});

describe("publish through the daemon (issue 20, items 2 and 5)", () => {
  test("publish A B C: every spec is tried, each failure reported, exit 1; --json prints the ids", () => {
    const held = Bun.listen({ hostname: "127.0.0.1", port: base + 1, socket: { data() {} } });
    try {
      const r = cli([
        "publish",
        `127.0.0.1:${base}:127.0.0.1:7001`,
        `127.0.0.1:${base + 1}:127.0.0.1:7002`,
        `127.0.0.1:${base + 2}:127.0.0.1:7003`,
      ]);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(new RegExp(`published: 127\\.0\\.0\\.1:${base}->127\\.0\\.0\\.1:7001/tcp`));
      expect(r.out).toMatch(new RegExp(`published: 127\\.0\\.0\\.1:${base + 2}->127\\.0\\.0\\.1:7003/tcp`));
      expect(r.err).toContain(`edgeport publish: 127.0.0.1:${base + 1}:127.0.0.1:7002: cannot listen on 127.0.0.1:`);
      expect(canBind("127.0.0.1", base)).toBe(false);
      expect(canBind("127.0.0.1", base + 2)).toBe(false);
    } finally {
      held.stop(true);
    }
    const j = cli(["publish", "--json", `127.0.0.1:${base + 3}:127.0.0.1:7004`, `127.0.0.1:${base}:127.0.0.1:7001`]);
    expect(j.code).toBe(0);
    const out = JSON.parse(j.out) as { spec: string; id: string; created: boolean }[];
    expect(out.map((x) => [x.spec, x.created])).toEqual([
      [`127.0.0.1:${base + 3}:127.0.0.1:7004`, true],
      [`127.0.0.1:${base}:127.0.0.1:7001`, false],
    ]);
    expect(out.every((x) => /^[0-9a-f]{6,}$/.test(x.id))).toBe(true);
  });

  test("unpublish of an unknown id exits 1 and says so; a known one exits 0", () => {
    const unknown = cli(["unpublish", "deadbeef0000"]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain("deadbeef0000: was not published");
    const known = cli(["unpublish", `127.0.0.1:${base + 3}:127.0.0.1:7004`]);
    expect([known.code, known.out]).toEqual([0, `127.0.0.1:${base + 3}:127.0.0.1:7004: unpublished\n`]);
  });

  test("status exits 0 while the pipe is up and 3 while it is DOWN", () => {
    const up = cli(["status"]);
    expect([up.code, up.out]).toEqual([0, expect.stringMatching(/pipe: {4}up/)]);
    const down = cli(["status"], downApi);
    expect([down.code, down.out]).toEqual([3, expect.stringMatching(/pipe: {4}DOWN/)]);
    expect(cli(["status", "--json"], downApi).code).toBe(3);
  });

  test("publish while the pipe is down: the port listens, the user is told what clients will see, exit 3", () => {
    const r = cli(["publish", `127.0.0.1:${base + 4}:127.0.0.1:7005`], downApi);
    expect(r.code).toBe(3);
    expect(r.out).toContain(`published: 127.0.0.1:${base + 4}->127.0.0.1:7005/tcp`);
    expect(r.err).toMatch(/the pipe to the VM \(unix:.*nobody\.sock\) is down: .*waits for the pipe.*then reset/);
  });
});

describe("ls (issue 20, item 7)", () => {
  test("one row per spec (both loopbacks and a range together), sorted by port number; -q; --format json|table", () => {
    // published in descending order: the API lists them that way, ls by port number
    expect(cli(["publish", `${base + 22}:127.0.0.1:7022`]).code).toBe(0);
    expect(cli(["publish", `127.0.0.1:${base + 20}-${base + 21}:127.0.0.1:7020-7021`]).code).toBe(0);
    const ls = cli(["ls"]);
    expect(ls.code).toBe(0);
    const lines = ls.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+PORTS\s+SOURCE\s+STATE\s+CONNS\s+IN\s+OUT\s+CONTAINER$/);
    const mine = lines.filter((l) => l.includes(`:${base + 20}-`) || l.includes(`:${base + 22}->`));
    expect(mine).toHaveLength(2);
    expect(mine[0]).toMatch(
      new RegExp(
        `^\\w+\\s+127\\.0\\.0\\.1:${base + 20}-${base + 21}->127\\.0\\.0\\.1:7020-7021/tcp\\s+ad-hoc \\(persisted\\)\\s+listening`,
      ),
    );
    expect(mine[1]).toMatch(
      new RegExp(`127\\.0\\.0\\.1,\\[::1\\]:${base + 22}->127\\.0\\.0\\.1:7022/tcp\\s+ad-hoc.*\\s-$`),
    );
    const ports = lines.slice(1).map((l) => Number(/:(\d+)(-\d+)?->/.exec(l)![1]));
    expect(ports).toEqual([...ports].sort((a, b) => a - b));
    const json = JSON.parse(cli(["ls", "--format", "json"]).out) as { id: string; ports: string }[];
    expect(JSON.parse(cli(["ls", "--json"]).out)).toEqual(json);
    expect(json.map((r) => r.id)).toEqual(lines.slice(1).map((l) => l.split(/\s+/)[0]));
    const q = cli(["ls", "-q"]);
    expect(q.out.trim().split("\n")).toEqual(json.map((r) => r.id));
    expect(cli(["ls", "--filter", "container=web", "-q"]).out).toBe("");
    expect(cli(["ls", "--format", "yaml"])).toMatchObject({ code: 2, err: expect.stringContaining('"yaml"') });
    expect(cli(["ls", "--filter", "name=web"])).toMatchObject({ code: 2, err: expect.stringContaining("container=") });
  });
});

describe("config files (issue 20, item 10)", () => {
  const bare = (args: string[], env: Record<string, string> = {}) => {
    const r = Bun.spawnSync([EDGEPORT, ...args], { stdin: "ignore", env: { ...process.env, ...env } });
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };

  test("EDGEPORT_CONFIG names run's file; syntax errors give line and column; .yaml is told to use .toml or .json", async () => {
    await Bun.write(join(dir, "env.toml"), 'binding = "open"\nrelay = \n');
    const r = bare(["run"], { EDGEPORT_CONFIG: join(dir, "env.toml") });
    expect([r.code, r.err]).toEqual([2, expect.stringContaining(`--config ${dir}/env.toml:2:9: not valid TOML`)]);
    await Bun.write(join(dir, "edgeport.yaml"), "relay: unix:///x\n");
    const y = bare(["run", "--config", join(dir, "edgeport.yaml")]);
    expect([y.code, y.err]).toEqual([2, expect.stringContaining("use .toml or .json")]);
  });

  test("forwarder --config: its options from the file, a relative socket path beside the file", async () => {
    mkdirSync(join(dir, "fwdconf"));
    await Bun.write(join(dir, "fwdconf", "forwarder.toml"), 'listen = "unix://f.sock"\nallow = ["127.0.0.0/8"]\n');
    const log = join(dir, "fwdconf.log");
    const f = spawnHost(["forwarder", "--config", join(dir, "fwdconf", "forwarder.toml")], log);
    try {
      await until(() => hasLog(log, /listening on .*fwdconf\/f\.sock; may dial: .*127\.0\.0\.0\/8/), "the forwarder");
      expect(existsSync(join(dir, "fwdconf", "f.sock"))).toBe(true);
    } finally {
      await stopProcess(f);
    }
  });
});

describe("--help (issue 20, item 4)", () => {
  const help = (args: string[], env: Record<string, string> = {}) => {
    const clean = { ...process.env };
    delete clean.NO_COLOR;
    delete clean.FORCE_COLOR;
    const r = Bun.spawnSync([EDGEPORT, ...args, "--help"], { stdin: "ignore", env: { ...clean, ...env } });
    return { code: r.exitCode, out: r.stdout.toString() };
  };
  const commands = [[], ["run"], ["forwarder"], ["publish"], ["unpublish"], ["ls"], ["status"], ["firewall"]];
  const more = [["firewall", "ls"], ["firewall", "prune"], ["version"]];

  test.each([...commands, ...more])(
    "edgeport %p --help: at most 80 columns in a pipe, no colour, 2-4 examples",
    (...cmd) => {
      const r = help(cmd);
      expect(r.code).toBe(0);
      const long = r.out.split("\n").filter((l) => l.length > 80);
      expect(long).toEqual([]);
      expect(r.out).not.toContain("\x1b[");
      const examples = r.out.split("EXAMPLES\n")[1]!.split("\n\n")[0]!.trim().split("\n");
      expect(examples.length).toBeGreaterThanOrEqual(2);
      expect(examples.length).toBeLessThanOrEqual(4);
    },
  );

  test("defaults are shown; TARGET_PORT and SPEC are required in publish --help", () => {
    expect(help(["run"]).out).toMatch(/--binding POLICY\n(.*\n)*? +.*\(default: local-default\)/);
    const p = help(["publish"]).out;
    expect(p).toContain("SPEC... (required)");
    expect(p).toContain("HOST_PORT[-END]:TARGET:TARGET_PORT[-END]");
  });

  test("colour only with FORCE_COLOR off a terminal; NO_COLOR with any value turns it off", () => {
    expect(help(["ls"], { FORCE_COLOR: "1" }).out).toContain("\x1b[1m");
    expect(help(["ls"], { FORCE_COLOR: "1", NO_COLOR: "true" }).out).not.toContain("\x1b[");
    expect(help(["ls"], { FORCE_COLOR: "1", NO_COLOR: "" }).out).not.toContain("\x1b[");
  });

  test("an unknown option suggests the closest one", () => {
    const r = Bun.spawnSync([EDGEPORT, "publish", "--relya", "x", "8080:1.2.3.4:80"]);
    expect([r.exitCode, r.stderr.toString()]).toEqual([2, expect.stringContaining("(did you mean --relay?)")]);
    const far = Bun.spawnSync([EDGEPORT, "ls", "--frobnicate"]);
    expect(far.stderr.toString()).toContain("unknown option --frobnicate (see --help)");
  });
});

describe("error messages (issue 20, item 6)", () => {
  const bare = (args: string[], env: Record<string, string> = {}) => {
    const r = Bun.spawnSync([EDGEPORT, ...args], { stdin: "ignore", env: { ...process.env, ...env } });
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };

  test.each([
    [
      ["publish", "--relay", "unix:///tmp/x.sock", "127.0.0.1:8080:10.0.0.1"],
      {},
      /TARGET_PORT is missing after "10\.0\.0\.1"/,
    ],
    [["forwarder", "--listen", "stdio:", "--allow", "banana"], {}, /--allow: "banana" is not a CIDR/],
    [
      ["run", "--relay", "unix:///tmp/x.sock", "--api", "none", "--firewall", "none"],
      { DOCKER_HOST: "http://127.0.0.1:2375" },
      /engine URL "http:\/\/127\.0\.0\.1:2375" is not one of .* \(from DOCKER_HOST\)/,
    ],
  ])("edgeport %p names the part at fault", (args, env, re) => {
    const r = bare(args, env);
    expect([r.code, r.err]).toEqual([2, expect.stringMatching(re)]);
  });

  test("a runtime error is one line `edgeport: <message>`; with --log-format json it carries the code; silent does not hide it", () => {
    const api = ["--api", `unix://${dir}/no-daemon.sock`];
    const text = bare(["ls", ...api]);
    expect([text.code, text.err]).toEqual([
      1,
      expect.stringMatching(
        /^edgeport: no edgeport daemon answers at unix:.*no-daemon\.sock \(ENOENT\); start one with/,
      ),
    ]);
    expect(text.err).not.toContain("[E_DIAL]");
    expect(text.err.trim().split("\n")).toHaveLength(1);
    const silent = bare(["ls", ...api, "--log-level", "silent"]);
    expect([silent.code, silent.err]).toEqual([1, text.err]);
    const json = bare(["ls", ...api, "--log-format", "json", "--log-level", "silent"]);
    expect(JSON.parse(json.err)).toMatchObject({
      level: "fatal",
      code: "E_DIAL",
      msg: expect.stringContaining("no edgeport daemon"),
    });
  });

  test("an unreachable engine: one prefix, the cause in our words, not Bun's guess", async () => {
    const log = join(dir, "no-engine.log");
    const engine = `unix://${dir}/no-engine.sock`;
    const p = spawnHost(
      ["run", "--relay", `unix://${dir}/nobody.sock`, "--engine", engine, "--api", "none", "--firewall", "none"],
      log,
    );
    try {
      await until(() => hasLog(log, /unreachable/), "the engine line");
      const line = logLines(log).find((l) => /unreachable/.test(l.msg))!.msg;
      expect(line).toStartWith(
        `engine ${engine} (from --engine) unreachable: no socket there (ENOENT); keeping what is published`,
      );
      expect(line).not.toContain("typo");
      expect(line.match(/unreachable/g)).toHaveLength(1);
    } finally {
      await stopProcess(p);
    }
  });

  test("firewall prune --dry-run says what it would remove", () => {
    const r = bare(["firewall", "prune", "--dry-run", "--firewall", "none"]);
    expect([r.code, r.out]).toEqual([0, "would remove 0 rule(s) of dead instances\n"]);
  });
});
