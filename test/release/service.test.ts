/**
 * `edgeport service` of the compiled binary, inside temp roots: the units it writes pass
 * `systemd-analyze verify`, the plists parse (python3's plistlib), the Task Scheduler XML parses
 * and says what it should, and install + uninstall leave no file behind.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "bun";
import { systemdUnit } from "../../src/cli/service/systemd.ts";
import { ensureBinary, until } from "../helpers/e2e.ts";

const work = mkdtempSync(join(tmpdir(), "edgeport-service-"));
let exe = "";
beforeAll(async () => {
  exe = await ensureBinary();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const RUN_TOML = 'relay = "unix:///run/edgeport/fwd.sock"\nbinding = "local-default"\n';
const FWD_TOML =
  'listen = "unix:///run/edgeport/fwd.sock"\nengine = "unix:///var/run/docker.sock"\nallow = ["172.17.0.0/16"]\n';

/** A fresh root with the config files where the services look for them. */
function newRoot(name: string): string {
  const root = join(work, name);
  rmSync(root, { recursive: true, force: true });
  for (const [dir, file, text] of [
    ["etc/edgeport", "edgeport.toml", RUN_TOML],
    ["etc/edgeport", "forwarder.toml", FWD_TOML],
    ["home/me/.config/edgeport", "edgeport.toml", RUN_TOML],
  ] as const) {
    mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, dir, file), text);
  }
  return root;
}

/** Every file and symlink under root but the config files the test put there. */
function leftovers(root: string): string[] {
  return (readdirSync(root, { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[])
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .filter((p) => !/edgeport\/(edgeport|forwarder)\.toml$/.test(p))
    .sort();
}

const service = (args: string[], env: Record<string, string> = {}) =>
  $`${exe} service ${args}`
    .env({ PATH: process.env.PATH ?? "", HOME: "/home/me", ...env })
    .quiet()
    .nothrow();

async function verify(files: string[], user = false) {
  const r = user
    ? await $`systemd-analyze --user verify ${files}`
        .env({ ...process.env, XDG_RUNTIME_DIR: work })
        .quiet()
        .nothrow()
    : await $`systemd-analyze verify ${files}`.quiet().nothrow();
  return { code: r.exitCode, out: `${r.stdout}${r.stderr}`.trim() };
}

describe("systemd", () => {
  test("system units for both sides: verified, enabled under --root, and gone after uninstall", async () => {
    const root = newRoot("systemd");
    for (const extra of [[], ["--forwarder"]]) {
      const r = await service(["install", "--root", root, ...extra]);
      expect(r.stderr.toString()).toBe("");
      expect(r.exitCode).toBe(0);
    }
    const units = ["edgeport.service", "edgeport-forwarder.service"].map((u) => join(root, "etc/systemd/system", u));
    expect(await verify(units)).toEqual({ code: 0, out: "" });
    const unit = readFileSync(units[0]!, "utf8");
    expect(unit).toContain(`ExecStart=${exe} run --config /etc/edgeport/edgeport.toml`);
    expect(readFileSync(units[1]!, "utf8")).toContain(
      `ExecStart=${exe} forwarder --listen unix:///run/edgeport/fwd.sock --allow 172.17.0.0/16 --engine unix:///var/run/docker.sock`,
    );
    expect(leftovers(root)).toEqual([
      "etc/systemd/system/edgeport-forwarder.service",
      "etc/systemd/system/edgeport.service",
      "etc/systemd/system/multi-user.target.wants/edgeport-forwarder.service",
      "etc/systemd/system/multi-user.target.wants/edgeport.service",
    ]);
    expect((await service(["status", "--root", root])).stdout.toString()).toContain("edgeport.service: installed");
    for (const extra of [[], ["--forwarder"]])
      expect((await service(["uninstall", "--root", root, ...extra])).exitCode).toBe(0);
    expect(leftovers(root)).toEqual([]);
    expect((await service(["status", "--root", root])).stdout.toString()).toContain("edgeport.service: not installed");
  });

  test("a user unit in ~/.config/systemd/user passes systemd-analyze --user verify and is removed again", async () => {
    const root = newRoot("user");
    expect((await service(["install", "--user", "--root", root])).exitCode).toBe(0);
    const unit = join(root, "home/me/.config/systemd/user/edgeport.service");
    expect(readFileSync(unit, "utf8")).toContain("WantedBy=default.target");
    expect(await verify([unit], true)).toEqual({ code: 0, out: "" });
    expect((await service(["uninstall", "--user", "--root", root])).exitCode).toBe(0);
    expect(leftovers(root)).toEqual([]);
  });

  test("--dry-run prints a unit that verifies, and writes nothing", async () => {
    const root = newRoot("dry");
    const cfg = join(root, "etc/edgeport/edgeport.toml");
    const r = await service(["install", "--dry-run", "--config", cfg]);
    expect(r.exitCode).toBe(0);
    const text = r.stdout.toString();
    expect(text.split("\n")[0]).toBe("# /etc/systemd/system/edgeport.service");
    expect(text).toContain("# then: systemctl enable --now edgeport.service");
    const unit = join(root, "edgeport.service");
    writeFileSync(unit, text.replace(/^#.*\n/gm, ""));
    expect(await verify([unit])).toEqual({ code: 0, out: "" });
    rmSync(unit);
    expect(leftovers(root)).toEqual([]);
  });

  test("the forwarder's ExecStart, as written, starts a forwarder that accepts the pipe", async () => {
    const root = newRoot("fwd-run");
    const sock = join(root, "fwd.sock");
    writeFileSync(join(root, "etc/edgeport/forwarder.toml"), `listen = "unix://${sock}"\nallow = ["127.0.0.1/32"]\n`);
    expect((await service(["install", "--forwarder", "--root", root])).exitCode).toBe(0);
    const unit = readFileSync(join(root, "etc/systemd/system/edgeport-forwarder.service"), "utf8");
    const argv = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(" ");
    const p = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe" });
    try {
      await until(() => existsSync(sock), `the forwarder's socket ${sock}`);
      const c = await Bun.connect({ unix: sock, socket: { data() {} } });
      c.end();
    } finally {
      p.kill("SIGTERM");
      await p.exited;
    }
    expect(await new Response(p.stderr).text()).not.toMatch(/ERROR|unknown/i);
  });

  test("systemd 254's restart backoff keys are the only thing an older systemd does not know", async () => {
    const unit = join(work, "backoff.service");
    writeFileSync(unit, systemdUnit({ kind: "run", scope: "system", exe, args: ["run"], description: "x" }, 254));
    const { code, out } = await verify([unit]);
    expect(code).toBe(0);
    const version = Number(/systemd (\d+)/.exec(await $`systemd-analyze --version`.text())![1]);
    const unknown = out.split("\n").filter(Boolean);
    if (version >= 254) expect(unknown).toEqual([]);
    else expect(unknown.map((l) => /Unknown key '(\w+)'/.exec(l)?.[1])).toEqual(["RestartSteps", "RestartMaxDelaySec"]);
  });

  test.each([
    [["install", "--config", "/nonexistent/e.toml"], /cannot read \/nonexistent\/e\.toml: ENOENT/],
    [["install", "--os", "darwin", "--forwarder"], /the forwarder runs inside the Linux VM/],
    [["install", "--os", "beos"], /--os: "beos" is not one of linux, darwin, windows/],
  ])("edgeport service %p fails, saying why", async (args, want) => {
    const r = await service(args);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.toString()).toMatch(want);
  });

  test("a config without relay is refused", async () => {
    const root = newRoot("norelay");
    writeFileSync(join(root, "etc/edgeport/edgeport.toml"), 'binding = "open"\n');
    const r = await service(["install", "--root", root]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain('has no "relay"');
    expect(leftovers(root)).toEqual([]);
  });
});

const python = (code: string, file: string) => $`python3 -c ${code} ${file}`.quiet().nothrow();

describe("launchd", () => {
  test.each([
    [[], "Library/LaunchDaemons/dev.edgeport.run.plist"],
    [["--user"], "home/me/Library/LaunchAgents/dev.edgeport.run.plist"],
  ])("%p: the plist parses and names the program and its config; uninstall removes it", async (extra, path) => {
    const root = newRoot(`launchd${extra.length}`);
    if (extra.length) writeFileSync(join(root, "home/me/.config/edgeport/edgeport.toml"), RUN_TOML);
    expect((await service(["install", "--os", "darwin", "--root", root, ...extra])).exitCode).toBe(0);
    expect(leftovers(root)).toEqual([path]);
    const r = await python(
      "import plistlib,sys,json; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))",
      join(root, path),
    );
    expect(r.stderr.toString()).toBe("");
    const config = extra.length ? "/home/me/.config/edgeport/edgeport.toml" : "/etc/edgeport/edgeport.toml";
    expect(JSON.parse(r.stdout.toString())).toMatchObject({
      Label: "dev.edgeport.run",
      ProgramArguments: [exe, "run", "--config", config],
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
    });
    expect((await service(["uninstall", "--os", "darwin", "--root", root, ...extra])).exitCode).toBe(0);
    expect(leftovers(root)).toEqual([]);
  });
});

describe("Windows", () => {
  test("the task XML is UTF-16, parses, runs edgeport at logon with the config; uninstall removes it", async () => {
    const root = newRoot("windows");
    const env = {
      LOCALAPPDATA: "C:\\Users\\me\\AppData\\Local",
      ProgramData: "C:\\ProgramData",
      USERDOMAIN: "PC",
      USERNAME: "me",
    };
    mkdirSync(join(root, "ProgramData/edgeport"), { recursive: true });
    writeFileSync(join(root, "ProgramData/edgeport/edgeport.toml"), RUN_TOML);
    const exeWin = "C:\\Program Files\\edgeport\\edgeport.exe";
    const r = await service(["install", "--os", "windows", "--root", root, "--exe", exeWin], env);
    expect(r.stderr.toString()).toBe("");
    const xml = join(root, "Users/me/AppData/Local/edgeport/edgeport.task.xml");
    expect(leftovers(root)).toEqual(["Users/me/AppData/Local/edgeport/edgeport.task.xml"]);
    expect([...readFileSync(xml).subarray(0, 2)]).toEqual([0xff, 0xfe]);
    const parsed = await python(
      `import sys,json,xml.etree.ElementTree as E
ns={'t':'http://schemas.microsoft.com/windows/2004/02/mit/task'}
r=E.parse(sys.argv[1]).getroot()
g=lambda p: r.find(p,ns).text
print(json.dumps({'user':g('t:Triggers/t:LogonTrigger/t:UserId'),'cmd':g('t:Actions/t:Exec/t:Command'),'args':g('t:Actions/t:Exec/t:Arguments'),'limit':g('t:Settings/t:ExecutionTimeLimit'),'restart':g('t:Settings/t:RestartOnFailure/t:Count'),'level':g('t:Principals/t:Principal/t:RunLevel')}))`,
      xml,
    );
    expect(parsed.stderr.toString()).toBe("");
    expect(JSON.parse(parsed.stdout.toString())).toEqual({
      user: "PC\\me",
      cmd: exeWin,
      args: "run --config C:\\ProgramData\\edgeport\\edgeport.toml",
      limit: "PT0S",
      restart: "999",
      level: "HighestAvailable",
    });
    expect(r.stdout.toString()).toContain("not run (--root): schtasks /Create /TN edgeport /XML");
    expect((await service(["uninstall", "--os", "windows", "--root", root], env)).exitCode).toBe(0);
    expect(leftovers(root)).toEqual([]);
  });
});
