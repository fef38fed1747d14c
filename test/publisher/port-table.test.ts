/** The port table executes plan()'s actions through an injected listener factory and keeps the firewall told. */
import { expect, test } from "bun:test";
import { createConsola, type LogObject } from "consola";
import type { WantedPort } from "../../src/events/wanted.ts";
import type { Firewall } from "../../src/firewall/index.ts";
import { createPortTable } from "../../src/publisher/port-table.ts";
import { EdgeportError } from "../../src/shared/errors.ts";
import { fakeListeners } from "./fake-listeners.ts";

const want = (hostPort: number, targetIp = "10.0.0.2", proto: "tcp" | "udp" = "tcp"): WantedPort => ({
  key: `${proto}:127.0.0.1:${hostPort}`,
  proto,
  hostIp: "127.0.0.1",
  hostPort,
  targetIp,
  targetPort: 80,
  containerId: "c1",
  containerName: "web",
});

function table() {
  const l = fakeListeners();
  const lines: string[] = [];
  const synced: unknown[][] = [];
  const log = createConsola({ level: 5, reporters: [{ log: (o: LogObject) => lines.push(o.args.join(" ")) }] });
  const firewall = { sync: (x: unknown[]) => synced.push(x) } as unknown as Firewall;
  const t = createPortTable({
    openListener: l.open,
    firewall,
    log,
    describe: (w) => `container ${w.containerName}`,
    retried: () => true,
  });
  return { t, l, lines, synced };
}

test("open, retarget and close, each logged, the firewall synced after each pass", () => {
  const { t, l, lines, synced } = table();
  t.apply([{ kind: "open", want: want(8080) }]);
  expect([...t.published().keys()]).toEqual(["tcp:127.0.0.1:8080"]);
  expect(synced.at(-1)).toEqual([{ proto: "tcp", address: "127.0.0.1", port: 8080 }]);
  t.apply([{ kind: "retarget", key: "tcp:127.0.0.1:8080", want: want(8080, "10.0.0.9") }]);
  expect(l.opened[0]!.retargets.map((m) => m.targetIp)).toEqual(["10.0.0.9"]);
  expect(t.published().get("tcp:127.0.0.1:8080")!.targetIp).toBe("10.0.0.9");
  t.apply([{ kind: "close", key: "tcp:127.0.0.1:8080", was: want(8080, "10.0.0.9") }]);
  expect(l.live()).toHaveLength(0);
  expect(synced.at(-1)).toEqual([]);
  expect(lines).toEqual([
    "published 127.0.0.1:8080 -> 10.0.0.2:80/tcp (container web)",
    "retargeted 127.0.0.1:8080 -> 10.0.0.9:80/tcp (container web)",
    "unpublished 127.0.0.1:8080 -> 10.0.0.9:80/tcp (container web)",
  ]);
});

test("a failed bind is remembered and logged once per message; forgotten when no longer wanted", async () => {
  const { t, l, lines } = table();
  l.failing.set("tcp 127.0.0.1:8080", new EdgeportError("E_PORT_IN_USE", "in use"));
  l.failing.set("udp 127.0.0.1:8081", new EdgeportError("E_PERMISSION", "denied"));
  t.apply([
    { kind: "open", want: want(8080) },
    { kind: "open", want: want(8081, "10.0.0.2", "udp") },
  ]);
  await t.settled(["udp:127.0.0.1:8081"]);
  expect(t.failure("tcp:127.0.0.1:8080")?.code).toBe("E_PORT_IN_USE");
  expect(t.failure("udp:127.0.0.1:8081")?.code).toBe("E_PERMISSION");
  expect(t.published().size).toBe(0);
  t.apply([{ kind: "open", want: want(8080) }]);
  expect(lines.filter((x) => x.includes("in use"))).toHaveLength(1);
  t.forget(new Set(["udp:127.0.0.1:8081"]));
  expect([...t.failedKeys()]).toEqual(["udp:127.0.0.1:8081"]);
  t.forget("udp:127.0.0.1:8081");
  expect(t.failures()).toEqual([]);
});

test("closeAll closes every listener and tells the firewall", async () => {
  const { t, l, synced } = table();
  t.apply([
    { kind: "open", want: want(8080) },
    { kind: "open", want: want(8081, "10.0.0.2", "udp") },
  ]);
  await t.closeAll(0);
  expect(l.live()).toHaveLength(0);
  expect(t.bound()).toEqual([]);
  expect(synced.at(-1)).toEqual([]);
});
