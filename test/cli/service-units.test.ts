/** The pure service builders: systemd units, launchd plists, Task Scheduler XML, quoting, the forwarder config. */
import { describe, expect, test } from "bun:test";
import { forwarderArgs, parseForwarderConfig } from "../../src/cli/service/forwarder-config.ts";
import { launchdPlist } from "../../src/cli/service/launchd.ts";
import { defaultConfigPath, servicePlan } from "../../src/cli/service/plan.ts";
import { systemdQuote, systemdUnit } from "../../src/cli/service/systemd.ts";
import type { ServiceSpec } from "../../src/cli/service/types.ts";
import { windowsQuote, windowsTaskXml } from "../../src/cli/service/windows-task.ts";

const spec = (over: Partial<ServiceSpec> = {}): ServiceSpec => ({
  kind: "run",
  scope: "system",
  exe: "/usr/local/bin/edgeport",
  args: ["run", "--config", "/etc/edgeport/edgeport.toml"],
  description: "edgeport",
  ...over,
});
const lines = (text: string) => text.split("\n");

describe("systemd units", () => {
  test("the host side's system unit: network-online, firewall prune around it, restart on failure, multi-user", () => {
    const u = lines(systemdUnit(spec(), 252));
    expect(u).toContain("Wants=network-online.target");
    expect(u).toContain("After=network-online.target");
    expect(u).toContain("ExecStartPre=-/usr/local/bin/edgeport firewall prune");
    expect(u).toContain("ExecStart=/usr/local/bin/edgeport run --config /etc/edgeport/edgeport.toml");
    expect(u).toContain("ExecStopPost=-/usr/local/bin/edgeport firewall prune");
    expect(u).toContain("Restart=on-failure");
    expect(u).toContain("StartLimitIntervalSec=0");
    expect(u).toContain("WantedBy=multi-user.target");
    expect(u.filter((l) => l.startsWith("WantedBy="))).toHaveLength(1);
  });
  test("a user unit is wanted by default.target (the user manager has no multi-user or network-online target)", () => {
    const u = lines(systemdUnit(spec({ scope: "user" }), 252));
    expect(u).toContain("WantedBy=default.target");
    expect(u.join("\n")).not.toContain("multi-user");
    expect(u.join("\n")).not.toContain("network-online");
  });
  test("the forwarder starts after docker.service and prunes no firewall (it writes none)", () => {
    const u = lines(systemdUnit(spec({ kind: "forwarder", args: ["forwarder", "--listen", "stdio:"] }), 252));
    expect(u).toContain("After=network-online.target docker.service");
    expect(u.some((l) => l.includes("prune"))).toBe(false);
  });
  test("restart backoff: a growing delay from systemd 254, a fixed 5 s before", () => {
    expect(lines(systemdUnit(spec(), 254))).toEqual(
      expect.arrayContaining(["RestartSec=1s", "RestartSteps=6", "RestartMaxDelaySec=60s"]),
    );
    const old = lines(systemdUnit(spec(), 252));
    expect(old).toContain("RestartSec=5s");
    expect(old.some((l) => l.startsWith("RestartSteps"))).toBe(false);
  });
  test.each([
    ["/usr/local/bin/edgeport", "/usr/local/bin/edgeport"],
    ["unix:///run/edgeport/fwd.sock", "unix:///run/edgeport/fwd.sock"],
    ["/opt/my dir/edgeport", '"/opt/my dir/edgeport"'],
    ["100%", '"100%%"'],
    ["$HOME", '"$$HOME"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
  ])("systemdQuote(%p) = %s", (arg, want) => expect(systemdQuote(arg)).toBe(want));
});

describe("launchd", () => {
  test("a plist with the program's arguments, escaped, restarted only after a failure", () => {
    const p = launchdPlist(spec({ args: ["run", "--config", "/Users/a&b/e.toml"] }), "/Library/Logs/edgeport.log");
    expect(p).toContain("<string>/Users/a&amp;b/e.toml</string>");
    expect(p).toContain("<key>SuccessfulExit</key><false/>");
    expect(p).toContain("<key>Label</key><string>dev.edgeport.run</string>");
  });
  test("root gets a LaunchDaemon, --user a LaunchAgent in its home", () => {
    const base = { kind: "run", exe: "/usr/local/bin/edgeport", config: "/c", args: [], uid: 501, systemdVersion: 0 };
    const env = { HOME: "/Users/me" };
    const sys = servicePlan({ ...base, kind: "run", os: "darwin", scope: "system", env });
    const usr = servicePlan({ ...base, kind: "run", os: "darwin", scope: "user", env });
    expect(sys.files[0]!.path).toBe("/Library/LaunchDaemons/dev.edgeport.run.plist");
    expect(sys.enable).toEqual([["launchctl", "bootstrap", "system", "/Library/LaunchDaemons/dev.edgeport.run.plist"]]);
    expect(usr.files[0]!.path).toBe("/Users/me/Library/LaunchAgents/dev.edgeport.run.plist");
    expect(usr.disable).toEqual([["launchctl", "bootout", "gui/501/dev.edgeport.run"]]);
  });
});

describe("Windows", () => {
  test.each([
    ["run", "run"],
    ["C:\\Program Files\\edgeport\\e.toml", '"C:\\Program Files\\edgeport\\e.toml"'],
    ["C:\\dir with space\\", '"C:\\dir with space\\\\"'],
    ['say "hi"', '"say \\"hi\\""'],
    ["", '""'],
  ])("windowsQuote(%p) = %s", (arg, want) => expect(windowsQuote(arg)).toBe(want));
  test("the task starts at logon, never times out, restarts on failure; elevated only for the system scope", () => {
    const x = windowsTaskXml(spec({ exe: "C:\\edgeport\\edgeport.exe" }), "PC\\me");
    expect(x).toContain("<LogonTrigger><Enabled>true</Enabled><UserId>PC\\me</UserId></LogonTrigger>");
    expect(x).toContain("<ExecutionTimeLimit>PT0S</ExecutionTimeLimit>");
    expect(x).toContain("<RestartOnFailure><Interval>PT1M</Interval><Count>999</Count></RestartOnFailure>");
    expect(x).toContain("<RunLevel>HighestAvailable</RunLevel>");
    expect(windowsTaskXml(spec({ scope: "user" }), "PC\\me")).toContain("<RunLevel>LeastPrivilege</RunLevel>");
  });
});

describe("the forwarder's config file", () => {
  test("becomes the forwarder's flags, repeatable ones repeated", () => {
    const c = parseForwarderConfig(
      'listen = "unix:///run/edgeport/fwd.sock"\nallow = ["172.17.0.0/16", "10.0.0.0/8"]\nengine = "unix:///var/run/docker.sock"\n',
      "f.toml",
    );
    expect(forwarderArgs(c)).toEqual([
      "forwarder",
      "--listen",
      "unix:///run/edgeport/fwd.sock",
      "--allow",
      "172.17.0.0/16",
      "--allow",
      "10.0.0.0/8",
      "--engine",
      "unix:///var/run/docker.sock",
    ]);
  });
  test.each([
    ['listen = "stdio:"\nlisten-addr = 1\n', /f\.toml: unknown key\(s\) "listen-addr"/],
    ['engine = "unix:///x"\n', /f\.toml: "listen"/],
    ["listen = \n", /not valid TOML/],
  ])("%p is refused, naming the problem", (text, want) => {
    expect(() => parseForwarderConfig(text, "f.toml")).toThrow(want);
  });
  test.each([
    ["linux", "system", "run", {}, "/etc/edgeport/edgeport.toml"],
    ["linux", "user", "forwarder", { HOME: "/home/me" }, "/home/me/.config/edgeport/forwarder.toml"],
    ["linux", "user", "run", { HOME: "/home/me", XDG_CONFIG_HOME: "/x" }, "/x/edgeport/edgeport.toml"],
    [
      "win32",
      "user",
      "run",
      { APPDATA: "C:\\Users\\me\\AppData\\Roaming" },
      "C:\\Users\\me\\AppData\\Roaming\\edgeport\\edgeport.toml",
    ],
  ] as const)("default config %s %s %s", (os, scope, kind, env, want) => {
    expect(defaultConfigPath(os, scope, kind, env)).toBe(want);
  });
});
