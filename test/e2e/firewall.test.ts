/**
 * Host firewall rules for real, with nftables, never in the root namespace: a "host" namespace
 * whose input chains drop by default (an inet table and an ip table, like a hand-written ruleset
 * next to an iptables-nft one) and a "lan" namespace joined to it by a veth pair. `edgeport run`
 * runs in the host namespace, in a cgroup v2 of its own, following the test bed's dockerd through
 * its forwarder. The lan client reaches a published port only through edgeport's rules.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, openSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { INDEX_HTML, startTestbed, type Testbed } from "../../scripts/testbed.ts";
import { EDGEPORT, ensureBinary, hasLog, logLines, stopProcess, until } from "../helpers/e2e.ts";
import { freePortRange } from "../helpers/tcp-client.ts";

const suffix = Math.random().toString(16).slice(2, 8);
const HOST_NS = `ep-fwh-${suffix}`;
const LAN_NS = `ep-fwl-${suffix}`;
const HOST_IP = "198.18.7.1";
const LAN_IP = "198.18.7.2";
const CG2 = readFileSync("/proc/self/mountinfo", "utf8")
  .split("\n")
  .map((l) => l.split(" "))
  .find((f) => f[f.indexOf("-") + 1] === "cgroup2")?.[4];
const CGROUP = CG2 ? join(CG2, `edgeport-fwtest-${suffix}`) : null;

const RULESET = `
table inet hostfw {
	set trusted {
		type ipv4_addr
		elements = { 192.0.2.10 }
	}

	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		ip saddr @trusted counter packets 0 bytes 0 accept
	}
}
table ip legacy {
	chain INPUT {
		type filter hook input priority 10; policy drop;
		iif "lo" accept
		ct state established,related accept
	}
}
`;

let tb: Testbed;
let fwd: Bun.Subprocess;
let fwdSock: string;
let runLog: string;
let edgeport: Bun.Subprocess | null = null;
let base: number;
const others: Bun.Subprocess[] = [];
let before = "";

const sh = (cmd: string[]) => {
  const r = Bun.spawnSync(cmd);
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
};
const inHost = (cmd: string[]) => ["nsenter", `--net=/run/netns/${HOST_NS}`, "--", ...cmd];
const ruleset = () => sh(inHost(["nft", "list", "ruleset"]));
/** edgeport's rules in the host namespace, as `nft -a` text lines */
const ownRules = () =>
  ruleset()
    .split("\n")
    .filter((l) => l.includes('comment "edgeport:'));
/** what a client on the lan gets from HOST_IP:port: the body, or "" when it cannot connect */
const fromLan = (port: number) =>
  Bun.spawnSync([
    "nsenter",
    `--net=/run/netns/${LAN_NS}`,
    "--",
    "curl",
    "-sS",
    "-m",
    "1",
    `http://${HOST_IP}:${port}/`,
  ]).stdout.toString();

function startEdgeport(): Bun.Subprocess {
  const control = join(tb.dir, "control", "control.sock");
  const argv = [
    EDGEPORT,
    "run",
    "--engine",
    tb.dockerHost,
    "--relay",
    `unix://${fwdSock}`,
    "--binding",
    "open",
    "--resync",
    "1s",
    "--firewall",
    "nftables",
    "--api",
    `unix://${control}`,
    "--log-format",
    "json",
    "--log-level",
    "debug",
  ];
  const out = openSync(runLog, "a");
  // its own cgroup v2, so the rules can be scoped to its sockets; then into the host namespace
  const p = Bun.spawn(["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', CGROUP!, ...inHost(argv)], {
    stdout: out,
    stderr: out,
    stdin: "ignore",
  });
  return p;
}

/** a process of someone else in the host namespace (root cgroup) answering "other" on HOST_IP:port */
function otherListener(port: number): Bun.Subprocess {
  const p = Bun.spawn(
    inHost([
      "socat",
      `TCP-LISTEN:${port},bind=${HOST_IP},reuseaddr,fork`,
      "SYSTEM:echo HTTP/1.0 200 OK; echo; echo other",
    ]),
    { stdout: "ignore", stderr: "ignore" },
  );
  others.push(p);
  return p;
}

beforeAll(async () => {
  if (!CGROUP) throw new Error("cgroup v2 is not mounted on this machine: the firewall test needs it");
  await ensureBinary();
  sh(["ip", "netns", "add", HOST_NS]);
  sh(["ip", "netns", "add", LAN_NS]);
  sh(["ip", "link", "add", `eph${suffix}`, "type", "veth", "peer", "name", `epl${suffix}`]);
  sh(["ip", "link", "set", `eph${suffix}`, "netns", HOST_NS]);
  sh(["ip", "link", "set", `epl${suffix}`, "netns", LAN_NS]);
  for (const [ns, dev, ip] of [
    [HOST_NS, `eph${suffix}`, HOST_IP],
    [LAN_NS, `epl${suffix}`, LAN_IP],
  ] as const) {
    sh(["ip", "-n", ns, "addr", "add", `${ip}/24`, "dev", dev]);
    sh(["ip", "-n", ns, "link", "set", dev, "up"]);
    sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
  }
  const file = `/tmp/edgeport-fwtest-${suffix}.nft`;
  writeFileSync(file, RULESET);
  sh(inHost(["nft", "-f", file]));
  before = ruleset();
  mkdirSync(CGROUP);
  tb = await startTestbed();
  // dockerd reserves each published host address:port in the VM (even without the userland proxy)
  sh(["nsenter", `--net=${tb.netnsPath}`, "--", "ip", "addr", "add", `${HOST_IP}/32`, "dev", "lo"]);
  fwdSock = join(tb.dir, "edgeport", "fwd.sock");
  runLog = join(tb.dir, "run.log");
  const fwdLog = join(tb.dir, "forwarder.log");
  fwd = tb.spawnInVm(
    [EDGEPORT, "forwarder", "--listen", `unix://${fwdSock}`, "--allow", "172.17.0.0/16", "--log-format", "json"],
    { logFile: fwdLog },
  );
  await until(() => hasLog(fwdLog, /^listening on/), "the forwarder");
  base = freePortRange(10);
}, 120_000);

afterAll(async () => {
  if (process.env.EDGEPORT_TEST_DEBUG && runLog) writeFileSync(process.env.EDGEPORT_TEST_DEBUG, readFileSync(runLog));
  await stopProcess(edgeport, "SIGKILL");
  for (const p of others) await stopProcess(p, "SIGKILL");
  await stopProcess(fwd);
  await tb?.stop();
  Bun.spawnSync(["ip", "netns", "del", HOST_NS]); // takes the veth pair and its nft tables with it
  Bun.spawnSync(["ip", "netns", "del", LAN_NS]);
  if (CGROUP) {
    try {
      rmdirSync(CGROUP);
    } catch {}
  }
}, 60_000);

const web = ["httpd", "-f", "-p", "80", "-h", "/www"];

describe("nftables rules for edgeport's non-loopback listeners", () => {
  test("default drop: the lan cannot reach a listener of the host namespace", async () => {
    otherListener(base);
    // it listens (socat needs a moment to bind: polled, not assumed)
    await until(
      () =>
        Bun.spawnSync(inHost(["curl", "-sS", "-m", "1", `http://${HOST_IP}:${base}/`])).stdout.toString() === "other\n",
      "the other listener",
    );
    expect(fromLan(base)).toBe(""); // but the host's firewall drops the lan
    expect(ownRules()).toEqual([]);
  });

  test("publish: the lan reaches the container; the rules sit in both drop chains, scoped to address, port and edgeport's cgroup", async () => {
    edgeport = startEdgeport();
    const p = base + 1;
    await tb.dockerOk(["run", "-d", "--name", "fwweb", "-p", `${HOST_IP}:${p}:80`, "edgeport-busybox:test", ...web]);
    await until(() => fromLan(p) === INDEX_HTML, "the container from the lan", 15_000);
    const rules = ownRules();
    expect(rules.length).toBe(2); // one in inet hostfw input, one in ip legacy INPUT
    // nft prints the path relative to /sys/fs/cgroup (unified/... on a hybrid host)
    const cg = CGROUP!.slice(CG2!.length + 1);
    for (const r of rules)
      expect(r).toMatch(
        new RegExp(
          `ip daddr ${HOST_IP.replace(/\./g, "\\.")} tcp dport ${p} socket cgroupv2 level 1 "(unified/)?${cg}" accept comment "edgeport:[0-9a-f]{8}:\\d+@\\d+:tcp:${HOST_IP.replace(/\./g, "\\.")}:${p}"`,
        ),
      );
    // someone else's listener on another port of the same address is still not reachable
    expect(fromLan(base)).toBe("");
    const applied = logLines(runLog).find((l) => /firewall \(nftables\): allowed tcp:198\.18\.7\.1/.test(l.msg));
    expect(applied).toBeDefined();
  });

  test("unpublish: the rules go, removed by handle; the lan cannot connect", async () => {
    const p = base + 1;
    await tb.dockerOk(["rm", "-f", "fwweb"]);
    await until(() => ownRules().length === 0, "the rules to go", 10_000);
    expect(fromLan(p)).toBe("");
    expect(ruleset()).toBe(before);
  });

  test("a port range is one ranged rule per chain, applied in one transaction (dockerd needs ~30 s for 1,000 ports, so 100 here)", async () => {
    const lo = 40000;
    await tb.dockerOk([
      "run",
      "-d",
      "--name",
      "fwrange",
      "-p",
      `${HOST_IP}:${lo}-${lo + 99}:${lo}-${lo + 99}`,
      "edgeport-busybox:test",
      "sleep",
      "600",
    ]);
    await until(() => ownRules().some((r) => r.includes(`tcp dport ${lo}-${lo + 99} `)), "the range rule", 30_000);
    expect(ownRules().length).toBe(2);
    const applied = logLines(runLog).filter((l) => l.msg.includes(`allowed tcp:${HOST_IP}:${lo}`));
    expect(applied.length).toBe(1); // one batch, not 100
    console.log(`[firewall] ${applied[0]?.msg}`);
    await tb.dockerOk(["rm", "-f", "fwrange"]);
    await until(() => ownRules().length === 0, "the range rule to go", 30_000);
  });

  test("SIGKILL leaves the rules, scoped so that another process on that port is not let in; the next start prunes them, no duplicates", async () => {
    const p = base + 2;
    await tb.dockerOk(["run", "-d", "--name", "fwweb2", "-p", `${HOST_IP}:${p}:80`, "edgeport-busybox:test", ...web]);
    await until(() => fromLan(p) === INDEX_HTML, "the container from the lan", 15_000);
    const oldPid = edgeport!.pid;
    await stopProcess(edgeport, "SIGKILL");
    edgeport = null;
    const stale = ownRules();
    expect(stale.length).toBe(2);
    // another process (not in edgeport's cgroup) takes the address and port: the stale accept does not match its socket
    const other = otherListener(p);
    await until(
      () =>
        Bun.spawnSync(inHost(["curl", "-sS", "-m", "1", `http://${HOST_IP}:${p}/`])).stdout.toString() === "other\n",
      "the other listener",
    );
    expect(fromLan(p)).toBe("");
    await stopProcess(other, "SIGKILL");
    edgeport = startEdgeport();
    await until(() => fromLan(p) === INDEX_HTML, "the container from the lan again", 15_000);
    await until(
      () => ownRules().length === 2 && ownRules().every((r) => !r.includes(`:${oldPid}:`)),
      "only the new instance's rules",
      10_000,
    );
    expect(logLines(runLog).some((l) => /removed 2 rule\(s\) left by dead instances/.test(l.msg))).toBe(true);
  });

  test("edgeport firewall ls shows the rules with their owner; a clean exit removes every rule and leaves the ruleset byte-identical", async () => {
    const ls = Bun.spawnSync(inHost([EDGEPORT, "firewall", "ls", "--firewall", "nftables", "--json"]));
    const rows = JSON.parse(ls.stdout.toString()) as { rule: string; pid: number; running: boolean; where: string }[];
    expect(rows.length).toBe(2);
    for (const r of rows) expect(r).toMatchObject({ rule: `tcp:${HOST_IP}:${base + 2}`, running: true });
    expect(rows.map((r) => r.where.split(" handle")[0]).sort()).toEqual(["inet hostfw input", "ip legacy INPUT"]);
    await stopProcess(edgeport, "SIGTERM");
    expect(edgeport!.exitCode).toBe(0);
    edgeport = null;
    expect(ownRules()).toEqual([]);
    expect(ruleset()).toBe(before);
    await tb.dockerOk(["rm", "-f", "fwweb2"]);
  });
});
