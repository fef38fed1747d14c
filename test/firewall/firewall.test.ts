import { describe, expect, test } from "bun:test";
import { type ConsolaInstance, createConsola } from "consola";
import { commandRunner, createFirewall, selectBackend } from "../../src/firewall/index.ts";
import { macosCommands, SOCKETFILTERFW } from "../../src/firewall/macos.ts";
import { cgroupScopeFrom, createNftablesBackend, nftBatch, nftMatch } from "../../src/firewall/nftables.ts";
import { diffRules, ownerTag, parseOwnerTag, planRules } from "../../src/firewall/plan.ts";
import type { Backend, OwnedRule, Runner } from "../../src/firewall/types.ts";
import {
  createWindowsBackend,
  parseWindowsList,
  powershellPath,
  ruleName,
  windowsScript,
} from "../../src/firewall/windows.ts";
import { until } from "../helpers/until.ts";

const quiet = createConsola({ level: -999 });
const owner = { instance: "0badcafe", pid: 4242 };
const range = (lo: number, n: number, address = "192.0.2.7", proto: "tcp" | "udp" = "tcp") =>
  Array.from({ length: n }, (_, i) => ({ proto, address, port: lo + i }));

describe("planRules (pure)", () => {
  test("loopback listeners need no rule; consecutive ports merge into ranges; families and wildcards are told apart", () => {
    const rules = planRules([
      ...range(8000, 3),
      { proto: "tcp", address: "127.0.0.1", port: 9000 },
      { proto: "tcp", address: "::1", port: 9000 },
      { proto: "tcp", address: "192.0.2.7", port: 8005 },
      { proto: "udp", address: "192.0.2.7", port: 8001 },
      { proto: "tcp", address: "0.0.0.0", port: 80 },
      { proto: "tcp", address: "::", port: 80 },
      { proto: "udp", address: "fd00::1", port: 53 },
      { proto: "tcp", address: "not an address", port: 1 },
    ]);
    expect(rules.map((r) => r.id)).toEqual([
      "tcp:[::]:80",
      "tcp:0.0.0.0:80",
      "tcp:192.0.2.7:8000-8002",
      "tcp:192.0.2.7:8005",
      "udp:[fd00::1]:53",
      "udp:192.0.2.7:8001",
    ]);
    expect(rules.find((r) => r.id === "tcp:[::]:80")).toMatchObject({ family: 6, any: true });
    expect(rules.find((r) => r.id === "udp:[fd00::1]:53")).toMatchObject({ family: 6, any: false });
  });

  test("a 1,000-port range is one rule; diff adds and removes by id", () => {
    const rules = planRules(range(40000, 1000));
    expect(rules.map((r) => r.id)).toEqual(["tcp:192.0.2.7:40000-40999"]);
    expect(diffRules(rules, new Set(["tcp:192.0.2.7:1", "tcp:192.0.2.7:40000-40999"]))).toEqual({
      add: [],
      remove: ["tcp:192.0.2.7:1"],
    });
  });

  test("owner tags round-trip; foreign comments are not ours", () => {
    const tag = ownerTag("0badcafe", 4242, "udp:[fd00::1]:53");
    expect(tag).toBe("edgeport:0badcafe:4242:udp:[fd00::1]:53");
    expect(parseOwnerTag(tag)).toEqual({ instance: "0badcafe", pid: 4242, id: "udp:[fd00::1]:53" });
    for (const t of ["edgeport:zz:1:tcp:1.2.3.4:5", "my rule", "edgeport:0badcafe:x:tcp:1.2.3.4:5"])
      expect(parseOwnerTag(t)).toBeNull();
  });
});

describe("nftables (pure parts)", () => {
  const [v4, v6any] = [planRules(range(8000, 100))[0]!, planRules([{ proto: "udp", address: "::", port: 53 }])[0]!];
  test("matches: exact address or family, protocol, port range, cgroup", () => {
    expect(nftMatch(v4, null)).toBe("ip daddr 192.0.2.7 tcp dport 8000-8099");
    expect(nftMatch(v6any, { path: "system.slice/edgeport.service", level: 2, mount: "/sys/fs/cgroup" })).toBe(
      'meta nfproto ipv6 udp dport 53 socket cgroupv2 level 2 "system.slice/edgeport.service"',
    );
  });

  test("one batch: deletes by handle first, then an insert per drop chain that can carry the family", () => {
    const chains = [
      { family: "inet", table: "filter", name: "input" },
      { family: "ip", table: "legacy", name: "INPUT" },
      { family: "ip6", table: "v6", name: "in" },
    ];
    const script = nftBatch(
      [v4, v6any],
      [{ family: "inet", table: "filter", name: "input", handle: 17 }],
      chains,
      owner,
      null,
    );
    expect(script.split("\n").filter(Boolean)).toEqual([
      "delete rule inet filter input handle 17",
      'insert rule inet filter input ip daddr 192.0.2.7 tcp dport 8000-8099 accept comment "edgeport:0badcafe:4242:tcp:192.0.2.7:8000-8099"',
      'insert rule inet filter input meta nfproto ipv6 udp dport 53 accept comment "edgeport:0badcafe:4242:udp:[::]:53"',
      'insert rule ip legacy INPUT ip daddr 192.0.2.7 tcp dport 8000-8099 accept comment "edgeport:0badcafe:4242:tcp:192.0.2.7:8000-8099"',
      'insert rule ip6 v6 in meta nfproto ipv6 udp dport 53 accept comment "edgeport:0badcafe:4242:udp:[::]:53"',
    ]);
  });

  test("cgroup scope from /proc: the root cgroup has none; hybrid mounts are found", () => {
    const mi =
      "35 25 0:30 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n36 25 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu";
    expect(cgroupScopeFrom("4:memory:/x\n0::/\n", mi)).toBeNull();
    expect(cgroupScopeFrom("0::/system.slice/edgeport.service\n", mi)).toEqual({
      path: "system.slice/edgeport.service",
      level: 2,
      mount: "/sys/fs/cgroup/unified",
    });
    expect(cgroupScopeFrom("0::/a\n", "36 25 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu")).toBeNull();
  });

  test("the backend reads only chain metadata and its own tagged rules, and runs nft by absolute path", async () => {
    const calls: string[][] = [];
    const chains = {
      nftables: [
        { metainfo: {} },
        { chain: { family: "inet", table: "filter", name: "input", hook: "input", policy: "drop" } },
        { chain: { family: "inet", table: "filter", name: "fwd", hook: "forward", policy: "drop" } },
      ],
    };
    const rules = {
      nftables: [
        {
          rule: {
            family: "inet",
            table: "filter",
            chain: "input",
            handle: 5,
            comment: "edgeport:0badcafe:99:tcp:192.0.2.7:80",
            expr: [],
          },
        },
        { rule: { family: "inet", table: "filter", chain: "input", handle: 6, comment: "ssh", expr: [] } },
        { rule: { family: "inet", table: "filter", chain: "input", handle: 7, expr: [] } },
      ],
    };
    const run: Runner = async (argv) => {
      calls.push(argv);
      return { code: 0, stdout: JSON.stringify(argv.includes("chains") ? chains : rules), stderr: "" };
    };
    const found = await createNftablesBackend({ run, cgroup: null }).list();
    expect(found).toEqual([
      {
        instance: "0badcafe",
        pid: 99,
        id: "tcp:192.0.2.7:80",
        where: "inet filter input handle 5",
        ref: { family: "inet", table: "filter", name: "input", handle: 5 },
      },
    ]);
    expect(calls).toEqual([
      ["/usr/sbin/nft", "-j", "list", "chains"],
      ["/usr/sbin/nft", "-j", "-a", "list", "chain", "inet", "filter", "input"],
    ]);
  });
});

describe("Windows (command lines checked against New-NetFirewallRule / Remove-NetFirewallRule / Get-NetFirewallRule)", () => {
  const program = "C:\\Program Files\\edgeport\\O'Brien tools\\edgeport.exe";
  test("powershell.exe by its absolute System32 path", () => {
    expect(powershellPath({ SystemRoot: "D:\\Windows" })).toBe(
      "D:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    );
    expect(powershellPath({})).toBe("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe");
  });

  test("delete-then-add, program-scoped, grouped, tagged; a port range is one rule; quotes survive paths with spaces and apostrophes", () => {
    const rules = planRules([...range(8000, 1000), { proto: "udp", address: "::", port: 53 }]);
    const script = windowsScript(rules, ["edgeport-11111111-tcp-192.0.2.7-80"], owner, program);
    const parts = script.split("; ");
    expect(parts).toEqual([
      "$ErrorActionPreference = 'Stop'",
      "$ProgressPreference = 'SilentlyContinue'",
      "Remove-NetFirewallRule -Name 'edgeport-11111111-tcp-192.0.2.7-80' -ErrorAction SilentlyContinue",
      "Remove-NetFirewallRule -Name 'edgeport-0badcafe-tcp-192.0.2.7-8000-8999' -ErrorAction SilentlyContinue",
      "New-NetFirewallRule -Name 'edgeport-0badcafe-tcp-192.0.2.7-8000-8999' -DisplayName 'edgeport TCP 192.0.2.7:8000-8999' -Group 'edgeport' -Description 'edgeport:0badcafe:4242:tcp:192.0.2.7:8000-8999' -Direction Inbound -Action Allow -Profile Any -Protocol TCP -LocalAddress '192.0.2.7' -LocalPort '8000-8999' -Program 'C:\\Program Files\\edgeport\\O''Brien tools\\edgeport.exe' | Out-Null",
      "Remove-NetFirewallRule -Name 'edgeport-0badcafe-udp-__-53' -ErrorAction SilentlyContinue",
      "New-NetFirewallRule -Name 'edgeport-0badcafe-udp-__-53' -DisplayName 'edgeport UDP [::]:53' -Group 'edgeport' -Description 'edgeport:0badcafe:4242:udp:[::]:53' -Direction Inbound -Action Allow -Profile Any -Protocol UDP -LocalAddress '::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' -LocalPort '53' -Program 'C:\\Program Files\\edgeport\\O''Brien tools\\edgeport.exe' | Out-Null",
    ]);
    expect(ruleName("0badcafe", "udp:[fd00::1]:53")).toBe("edgeport-0badcafe-udp-fd00__1-53");
  });

  test("one powershell run per batch; listing parses the structured JSON (one object or an array)", async () => {
    const calls: string[][] = [];
    const run: Runner = async (argv) => {
      calls.push(argv);
      return {
        code: 0,
        stdout:
          '[{"Name":"edgeport-0badcafe-tcp-192.0.2.7-80","Description":"edgeport:0badcafe:77:tcp:192.0.2.7:80"},{"Name":"other","Description":null}]',
        stderr: "",
      };
    };
    const b = createWindowsBackend({ run, program, env: { SystemRoot: "C:\\Windows" } });
    await b.apply(planRules(range(8000, 1000)), [], owner, []);
    expect(calls.length).toBe(1);
    expect(calls[0]!.slice(0, 6)).toEqual([
      "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
      "-NoProfile",
      "-NonInteractive",
      "-ExecutionPolicy",
      "Bypass",
      "-Command",
    ]);
    expect(await b.list()).toEqual([
      {
        instance: "0badcafe",
        pid: 77,
        id: "tcp:192.0.2.7:80",
        where: "edgeport-0badcafe-tcp-192.0.2.7-80",
        ref: "edgeport-0badcafe-tcp-192.0.2.7-80",
      },
    ]);
    expect(calls[1]![6]).toContain(
      "Get-NetFirewallRule -Group 'edgeport' -ErrorAction SilentlyContinue | Select-Object Name,Description",
    );
    expect(parseWindowsList('{"Name":"n","Description":"edgeport:0badcafe:1:udp:10.0.0.1:5"}')).toHaveLength(1);
    expect(parseWindowsList("")).toEqual([]);
  });
});

describe("macOS (socketfilterfw by absolute path, per application)", () => {
  test("added and unblocked with the first non-loopback listener, removed with the last", () => {
    const exe = "/Applications/Edge Port.app/Contents/MacOS/edgeport";
    expect(macosCommands(0, 3, exe)).toEqual([
      [SOCKETFILTERFW, "--add", exe],
      [SOCKETFILTERFW, "--unblockapp", exe],
    ]);
    expect(macosCommands(3, 4, exe)).toEqual([]);
    expect(macosCommands(4, 0, exe)).toEqual([[SOCKETFILTERFW, "--remove", exe]]);
    expect(SOCKETFILTERFW).toBe("/usr/libexec/ApplicationFirewall/socketfilterfw");
  });
});

describe("the manager: off the publish path, batched, failures reported, dead instances pruned", () => {
  function fakeBackend(o: { fail?: () => boolean; delayMs?: number } = {}) {
    const batches: { add: string[]; remove: string[] }[] = [];
    const present: OwnedRule[] = [];
    const calls = { apply: 0 };
    const b: Backend = {
      name: "nftables",
      list: async () => [...present],
      async apply(add, remove, own) {
        calls.apply++;
        await Bun.sleep(o.delayMs ?? 1);
        if (o.fail?.()) throw new Error("nft: Operation not permitted");
        batches.push({ add: add.map((r) => r.id), remove: remove.map((r) => r.id) });
        for (const r of remove) present.splice(present.indexOf(r), 1);
        const added = add.map((r) => ({ ...own, id: r.id, where: "x", ref: r.id }));
        present.push(...added);
        return added;
      },
    };
    return { b, batches, present, calls };
  }

  test("sync returns at once; a burst of syncs is coalesced into few batches; close removes everything", async () => {
    const { b, batches, present } = fakeBackend({ delayMs: 20 });
    const fw = createFirewall({ backend: b, log: quiet, instance: "0badcafe", pid: 1 });
    const t0 = performance.now();
    for (let n = 1; n <= 1000; n++) fw.sync(range(40000, n));
    expect(performance.now() - t0).toBeLessThan(200);
    await fw.settled();
    expect(batches.length).toBeLessThanOrEqual(2);
    expect(fw.applied()).toEqual(["tcp:192.0.2.7:40000-40999"]);
    await fw.close();
    expect(present).toEqual([]);
  });

  test("a failing backend is reported once and retried; publishing never waits for it", async () => {
    let failing = true;
    const lines: string[] = [];
    const log = createConsola({ level: 3, reporters: [{ log: (l) => void lines.push(l.args.join(" ")) }] });
    const { b, calls } = fakeBackend({ fail: () => failing });
    const fw = createFirewall({ backend: b, log, instance: "0badcafe", pid: 1, retryMs: 30 });
    fw.sync(range(80, 1));
    await fw.settled();
    expect(fw.lastError()).toMatch(/Operation not permitted/);
    await until(() => calls.apply >= 4, "three retries");
    expect(lines.filter((l) => /Operation not permitted/.test(l)).length).toBe(1);
    failing = false;
    await until(() => fw.applied().length > 0, "a retry that succeeds");
    expect(fw.applied()).toEqual(["tcp:192.0.2.7:80"]);
    await fw.close();
  });

  test("prune removes the rules of dead instances only", async () => {
    const { b, present } = fakeBackend();
    present.push(
      { instance: "aaaaaaaa", pid: 111, id: "tcp:1.2.3.4:1", where: "x", ref: 1 },
      { instance: "bbbbbbbb", pid: 222, id: "tcp:1.2.3.4:2", where: "x", ref: 2 },
    );
    const fw = createFirewall({ backend: b, log: quiet, instance: "0badcafe", pid: 1, alive: (pid) => pid === 222 });
    expect((await fw.prune()).map((r) => r.pid)).toEqual([111]);
    expect(present.map((r) => r.pid)).toEqual([222]);
  });

  test("dry run prints what would change and runs nothing that changes; auto picks per platform", async () => {
    const printed: string[] = [];
    const run = commandRunner({ dryRun: true, print: (l) => printed.push(l) });
    expect(
      await run(["/usr/sbin/nft", "-f", "-"], {
        stdin: "insert rule inet filter input tcp dport 1 accept\n",
        mutates: true,
      }),
    ).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(printed[0]).toBe(
      "[dry run] /usr/sbin/nft -f - <<'EOF'\ninsert rule inet filter input tcp dport 1 accept\nEOF",
    );
    expect((await run(["/bin/echo", "reads run"], { mutates: false })).stdout).toBe("reads run\n");
    expect(selectBackend("auto", { run, program: "x", platform: "win32", uid: 0, exists: () => true }).name).toBe(
      "windows",
    );
    expect(selectBackend("auto", { run, program: "x", platform: "darwin", uid: 0 }).name).toBe("macos");
    expect(selectBackend("auto", { run, program: "x", platform: "linux", uid: 1000 }).name).toBe("none");
    expect(selectBackend("auto", { run, program: "x", platform: "freebsd", uid: 0 }).name).toBe("none");
  });

  test("--firewall auto on Windows without PowerShell: one warning naming the path it looked at, no rules", () => {
    const warned: string[] = [];
    const log = { warn: (m: string) => warned.push(m), debug() {}, info() {} } as unknown as ConsolaInstance;
    const looked: string[] = [];
    const b = selectBackend("auto", {
      run: async () => ({ code: 0, stdout: "", stderr: "" }),
      program: "x",
      platform: "win32",
      uid: 0,
      env: { SystemRoot: "D:\\Win" },
      exists: (p) => {
        looked.push(p);
        return false;
      },
      log,
    });
    expect(b.name).toBe("none");
    expect(looked).toContain("D:\\Win\\System32\\WindowsPowerShell\\v1.0\\powershell.exe");
    expect(warned).toEqual([
      expect.stringContaining("no PowerShell at D:\\Win\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"),
    ]);
  });
});
