/**
 * The listeners extension end to end on two real sessions over an in-memory pipe: the forwarder's
 * report channel (a watcher fed fake tables) and the host's VM source. What the host wants, what it
 * tells the forwarder to allow, the rules, container ports left to the container, and a plain
 * vpnkit host that never sees the channel.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { createConsola } from "consola";
import type { WantedPort } from "../../src/events/wanted.ts";
import { createVmSource } from "../../src/publisher/vm-source.ts";
import { encodeReport, MAX_REPORTED } from "../../src/relay/control/listeners.ts";
import { createListenerAllowance } from "../../src/relay/forwarder/listeners/allowance.ts";
import { followListening, reportListeners } from "../../src/relay/forwarder/listeners/report-channel.ts";
import { createListenerWatcher } from "../../src/relay/forwarder/listeners/watcher.ts";
import { LISTENERS_DEST } from "../../src/relay/mux/constants.ts";
import { Session } from "../../src/relay/mux/session.ts";
import type { Config } from "../../src/shared/config.ts";
import { vmListenerRules } from "../../src/shared/config-vm-listeners.ts";
import { FakeEndpoint, pipePair, until } from "../helpers/memory-pipe.ts";

const quiet = createConsola({ level: -999 });
const HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
const line = (hexIp: string, port: number, inode: number) =>
  `   0: ${hexIp}:${port.toString(16).padStart(4, "0")} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0 100 0 0 10 0\n`;

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

async function setup(config: Config = {}, plainHost = false) {
  const tables: Record<string, string> = { tcp: HEAD };
  const watcher = createListenerWatcher({
    intervalMs: 1_000_000,
    read: (f) => tables[f] ?? null,
    owners: (inodes) => new Map([...inodes].map((i) => [i, { pid: 100 + i, name: `p${i}`, argv: [] }])),
  });
  const r = { watcher, allowance: createListenerAllowance(100) };
  cleanup.push(followListening(r), () => watcher.close());
  const vmSource = createVmSource(vmListenerRules(config), quiet);
  let changes = 0;
  vmSource.onChange(() => changes++);
  const opened: string[] = [];
  const [a, b] = pipePair();
  const host = new Session({
    role: "host",
    pipe: { plain: plainHost },
    onOpen: (ch, dest) => {
      opened.push(dest.proto === "unix" ? dest.path : dest.proto);
      vmSource.accept(host, ch);
    },
  });
  const reported: (object | null)[] = [];
  const vm = new Session({ role: "vm", onReady: (s) => void reported.push(reportListeners(s, r, quiet)) });
  cleanup.push(
    () => host.close(),
    () => vm.close(),
  );
  a.handlers = host.handlers;
  b.handlers = vm.handlers;
  host.start(a);
  vm.start(b);
  await until(() => host.state === "ready" && vm.state === "ready", "ready");
  const set = async (text: string) => {
    const before = changes;
    tables.tcp = HEAD + text;
    watcher.poll();
    await until(() => changes > before, "the host heard of it");
  };
  await until(() => reported.length === 1 && (plainHost || opened.length === 1), "the report channel");
  return { tables, r, vmSource, set, opened, reported };
}

const hostKeys = (w: WantedPort[]) => w.map((x) => `${x.key} -> ${x.targetIp}:${x.targetPort} (${x.containerName})`);

describe("VM listeners: forwarder report channel and host source", () => {
  test("a wildcard listener: wanted on 127.0.0.1 and ::1, dialled on the VM's loopback, allowed there only", async () => {
    const s = await setup();
    expect(s.opened).toEqual([LISTENERS_DEST]);
    await s.set(line("00000000", 5173, 1));
    expect(hostKeys(s.vmSource.wants([]))).toEqual([
      "tcp:127.0.0.1:5173 -> 127.0.0.1:5173 (p1)",
      "tcp:[::1]:5173 -> 127.0.0.1:5173 (p1)",
    ]);
    const t = { proto: "tcp" as const, ip: "127.0.0.1", port: 5173 };
    await until(async () => await s.r.allowance.allows(t), "the forwarder allows it");
    expect(await s.r.allowance.allows({ ...t, port: 5174 })).toBe(false);
    await s.set("");
    expect(s.vmSource.wants([])).toEqual([]);
    expect(await s.r.allowance.allows(t)).toBe(false);
  });
  test("a port another source wants stays theirs; the forwarder is not told to allow it", async () => {
    const s = await setup();
    await s.set(line("0100007F", 8080, 2));
    const container = { key: "tcp:127.0.0.1:8080", proto: "tcp", hostPort: 8080, containerName: "web" } as WantedPort;
    expect(s.vmSource.wants([container])).toEqual([]);
    expect(s.vmSource.state()).toEqual([
      {
        proto: "tcp",
        address: "127.0.0.1",
        port: 8080,
        process: "p2",
        status: "taken",
        reason: "host port 8080 is published for web",
      },
    ]);
    expect(await s.r.allowance.allows({ proto: "tcp", ip: "127.0.0.1", port: 8080 })).toBe(false);
  });
  test("rules: ignore, processes, the default list and include", async () => {
    const s = await setup({ "vm-listeners": { ignore: ["6000-6010"], "ignore-processes": ["p4*"], include: [40000] } });
    await s.set(
      [
        line("00000000", 6005, 3),
        line("00000000", 7000, 4),
        line("00000000", 22, 5),
        line("00000000", 40000, 6),
        line("00000000", 40001, 7),
      ].join(""),
    );
    const w = s.vmSource.wants([]);
    expect([...new Set(w.map((x) => x.hostPort))]).toEqual([40000]);
    const why = Object.fromEntries(s.vmSource.state().map((v) => [v.port, v.reason ?? v.status]));
    expect(why).toEqual({
      6005: 'port 6005 is ignored by the config (vm-listeners.ignore "6000-6010")',
      7000: 'process p4 is ignored by the config (vm-listeners.ignore-processes "p4*")',
      22: "port 22 is in the default ignore list (ssh); add it to vm-listeners.include to publish it",
      40000: "wanted",
      40001:
        "port 40001 is in the default ignore list (the ephemeral range); add it to vm-listeners.include to publish it",
    });
  });
  test("[vm-listeners] enabled = false: the channel is refused, nothing wanted", async () => {
    const s = await setup({ "vm-listeners": { enabled: false } });
    s.tables.tcp = HEAD + line("00000000", 5173, 1);
    s.r.watcher.poll();
    expect(s.vmSource.wants([])).toEqual([]);
    expect(s.vmSource.state()).toEqual([]);
  });
  test("a plain vpnkit host never receives the report channel", async () => {
    const s = await setup({}, true);
    expect(s.reported).toEqual([null]);
    expect(s.opened).toEqual([]);
  });
});

describe("a hostile VM on the report channel", () => {
  async function raw() {
    const vmSource = createVmSource(vmListenerRules({ "vm-listeners": { include: ["1-65535"] } }), quiet);
    let changes = 0;
    vmSource.onChange(() => changes++);
    const [a, b] = pipePair();
    const host = new Session({ role: "host", onOpen: (ch) => vmSource.accept(host, ch) });
    const vm = new Session({ role: "vm" });
    cleanup.push(
      () => host.close(),
      () => vm.close(),
    );
    a.handlers = host.handlers;
    b.handlers = vm.handlers;
    host.start(a);
    vm.start(b);
    await until(() => host.state === "ready" && vm.state === "ready", "ready");
    const ch = vm.open({ proto: "unix", path: LISTENERS_DEST }, new FakeEndpoint());
    const send = async (lines: string[]) => {
      const before = changes;
      for (const l of lines) ch.localData(new TextEncoder().encode(l));
      await until(() => changes > before, "the host read it");
    };
    return { vmSource, send };
  }

  test("process names with control bytes are made safe; bad lines are skipped, good ones kept", async () => {
    const s = await raw();
    await s.send([
      "not json\n",
      encodeReport(true, [{ proto: "tcp", ip: "0.0.0.0", port: 3000, process: "evil\u001b[2J\n" }], [])[0]!,
    ]);
    expect(s.vmSource.wants([]).map((w) => w.containerName)).toEqual(["evil\\x1b[2J\\x0a", "evil\\x1b[2J\\x0a"]);
  });

  test(`at most ${MAX_REPORTED} listeners are kept`, async () => {
    const s = await raw();
    const add = Array.from({ length: MAX_REPORTED + 500 }, (_, i) => ({
      proto: (i % 2 ? "udp" : "tcp") as "tcp" | "udp",
      ip: "127.0.0.1",
      port: (i >> 1) + 1,
    }));
    await s.send(encodeReport(true, add, []));
    await until(() => s.vmSource.wants([]).length === MAX_REPORTED * 2, "the capped picture");
  });
});
