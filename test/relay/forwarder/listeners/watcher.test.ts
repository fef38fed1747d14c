/** The watcher: diffs of what listens, owners looked up once per new socket, excluded owners never reported. */
import { describe, expect, test } from "bun:test";
import { createListenerAllowance } from "../../../../src/relay/forwarder/listeners/allowance.ts";
import { excludedOwner, type SocketOwner } from "../../../../src/relay/forwarder/listeners/owners.ts";
import { createListenerWatcher, type ListenerChange } from "../../../../src/relay/forwarder/listeners/watcher.ts";

const HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
const line = (hexIp: string, port: number, inode: number) =>
  `   0: ${hexIp}:${port.toString(16).toUpperCase().padStart(4, "0")} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0 100 0 0 10 0\n`;

function bed(owners: Record<number, SocketOwner>) {
  const tables: Record<string, string> = { tcp: HEAD };
  const asked: number[][] = [];
  const changes: ListenerChange[] = [];
  const w = createListenerWatcher({
    intervalMs: 1_000_000,
    read: (f) => tables[f] ?? null,
    owners: (inodes) => {
      asked.push([...inodes]);
      return new Map([...inodes].flatMap((i) => (owners[i] ? [[i, owners[i]!] as const] : [])));
    },
    exclude: (o) => excludedOwner(o, 4242),
  });
  w.subscribe((c) => changes.push(c));
  return { tables, asked, changes, w };
}

const node: SocketOwner = { pid: 10, name: "node", argv: ["node", "vite"] };

describe("listener watcher", () => {
  test("a new listener is added with its process, once; a stopped one removed", () => {
    const b = bed({ 7: node });
    b.tables.tcp = HEAD + line("00000000", 5173, 7);
    b.w.poll();
    expect(b.changes).toEqual([{ add: [{ proto: "tcp", ip: "0.0.0.0", port: 5173, process: "node" }], remove: [] }]);
    b.w.poll();
    expect(b.changes).toHaveLength(1); // nothing changed: nothing said, no owner scan
    expect(b.asked).toEqual([[7]]);
    b.tables.tcp = HEAD;
    b.w.poll();
    expect(b.changes[1]).toEqual({ add: [], remove: [{ proto: "tcp", ip: "0.0.0.0", port: 5173, process: "node" }] });
    expect(b.w.current()).toEqual([]);
    b.w.close();
  });
  test("the same port taken by a new socket (a restarted server) is a remove and an add", () => {
    const b = bed({ 7: node, 8: { ...node, pid: 11, name: "deno" } });
    b.tables.tcp = HEAD + line("0100007F", 3000, 7);
    b.w.poll();
    b.tables.tcp = HEAD + line("0100007F", 3000, 8);
    b.w.poll();
    expect(b.changes[1]!.add[0]!.process).toBe("deno");
    expect(b.changes[1]!.remove[0]!.process).toBe("node");
    b.w.close();
  });
  test.each<[string, SocketOwner]>([
    ["the forwarder itself", { pid: 4242, name: "edgeport", argv: ["edgeport", "forwarder"] }],
    ["dockerd", { pid: 5, name: "dockerd", argv: ["dockerd"] }],
    ["containerd-shim", { pid: 5, name: "containerd-shim", argv: ["containerd-shim-runc-v2"] }],
    ["docker-proxy", { pid: 5, name: "docker-proxy", argv: ["/usr/bin/docker-proxy", "-proto", "tcp"] }],
    [
      "edgeport as dockerd's userland proxy",
      {
        pid: 5,
        name: "edgeport",
        argv: [
          "/usr/bin/edgeport",
          "-proto",
          "tcp",
          "-host-ip",
          "0.0.0.0",
          "-host-port",
          "80",
          "-container-ip",
          "172.17.0.2",
        ],
      },
    ],
    ["edgeport docker-proxy", { pid: 5, name: "edgeport", argv: ["/usr/local/bin/edgeport", "docker-proxy"] }],
  ])("never reported: %s", (_, owner) => {
    const b = bed({ 9: owner });
    b.tables.tcp = HEAD + line("00000000", 8080, 9);
    b.w.poll();
    expect(b.changes).toEqual([]);
    expect(b.w.current()).toEqual([]);
    b.tables.tcp = HEAD;
    b.w.poll();
    expect(b.changes).toEqual([]);
    b.w.close();
  });
  test("an owner that cannot be read: reported without a process", () => {
    const b = bed({});
    b.tables.tcp = HEAD + line("00000000", 8080, 9);
    b.w.poll();
    expect(b.w.current()).toEqual([{ proto: "tcp", ip: "0.0.0.0", port: 8080 }]);
    b.w.close();
  });
});

describe("allowance", () => {
  test("exactly the listening targets the host allows; gone with the channel or the listener", async () => {
    const a = createListenerAllowance(50);
    const ch = {};
    a.setListening([
      { proto: "tcp", ip: "0.0.0.0", port: 5173 },
      { proto: "tcp", ip: "127.0.0.1", port: 6000 },
    ]);
    const t = { proto: "tcp" as const, ip: "127.0.0.1", port: 5173 };
    expect(await a.allows(t)).toBe(false); // no host has said anything
    a.setAllowed(ch, ["tcp:127.0.0.1:5173"]);
    expect(await a.allows(t)).toBe(true);
    expect(await a.allows({ ...t, port: 6000 })).toBe(false); // listening, not allowed: waits, then no
    expect(await a.allows({ ...t, proto: "udp" })).toBe(false);
    expect(await a.allows({ ...t, ip: "::1" })).toBe(false);
    a.drop(ch);
    expect(await a.allows(t)).toBe(false);
    a.setAllowed(ch, ["tcp:127.0.0.1:5173"]);
    a.setListening([]);
    expect(await a.allows(t)).toBe(false);
  });
  test("an Open that overtook the allow line waits for it", async () => {
    const a = createListenerAllowance(2000);
    const ch = {};
    a.setAllowed(ch, []);
    a.setListening([{ proto: "tcp", ip: "::", port: 80 }]);
    const pending = a.allows({ proto: "tcp", ip: "::1", port: 80 });
    a.setAllowed(ch, ["tcp:[::1]:80"]);
    const t0 = performance.now();
    expect(await pending).toBe(true);
    expect(performance.now() - t0).toBeLessThan(500);
  });
});
