import { expect, test } from "bun:test";
import { portKey, type WantedPort } from "../../src/events/wanted.ts";
import { plan } from "../../src/publisher/plan.ts";

const w = (container: string, hostPort: number, targetIp = "172.17.0.2", hostIp = "127.0.0.1"): WantedPort => ({
  key: portKey("tcp", hostIp, hostPort),
  hostIp,
  hostPort,
  proto: "tcp",
  targetIp,
  targetPort: 80,
  containerId: container,
  containerName: container,
});
const pub = (...ws: WantedPort[]) => new Map(ws.map((x) => [x.key, x]));
const summary = (p: ReturnType<typeof plan>) => ({
  actions: p.actions.map(
    (a) =>
      `${a.kind} ${a.kind === "open" ? a.want.key : a.key}${a.kind === "retarget" ? ` -> ${a.want.targetIp}` : ""}`,
  ),
  conflicts: p.conflicts.map((c) => `${c.key}: ${c.winner.containerId} keeps it, ${c.loser.containerId} refused`),
});

test.each([
  ["nothing wanted, nothing published", [], pub(), [], []],
  [
    "a new container",
    [[w("a", 8080), w("a", 8081)]],
    pub(),
    ["open tcp:127.0.0.1:8080", "open tcp:127.0.0.1:8081"],
    [],
  ],
  ["already published: no action (no flapping)", [[w("a", 8080)]], pub(w("a", 8080)), [], []],
  ["a container went away", [], pub(w("a", 8080)), ["close tcp:127.0.0.1:8080"], []],
  ["one of two ports dropped", [[w("a", 8080)]], pub(w("a", 8080), w("a", 8081)), ["close tcp:127.0.0.1:8081"], []],
  [
    "the container got a new address: retarget, no rebind",
    [[w("a", 8080, "172.17.0.9")]],
    pub(w("a", 8080)),
    ["retarget tcp:127.0.0.1:8080 -> 172.17.0.9"],
    [],
  ],
  [
    "two containers, one host port: the first keeps it",
    [[w("a", 8080)], [w("b", 8080)]],
    pub(),
    ["open tcp:127.0.0.1:8080"],
    ["tcp:127.0.0.1:8080: a keeps it, b refused"],
  ],
  [
    "the published one keeps it even when listed later",
    [[w("b", 8080)], [w("a", 8080)]],
    pub(w("a", 8080)),
    [],
    ["tcp:127.0.0.1:8080: a keeps it, b refused"],
  ],
  [
    "a freed port goes to the other container in the same pass (close first)",
    [[w("b", 8080, "172.17.0.3")]],
    pub(w("a", 8080)),
    ["retarget tcp:127.0.0.1:8080 -> 172.17.0.3"],
    [],
  ],
  [
    "the PROXY header turned on for a published port: retarget, no rebind",
    [[{ ...w("a", 8080), proxyProtocol: true }]],
    pub(w("a", 8080)),
    ["retarget tcp:127.0.0.1:8080 -> 172.17.0.2"],
    [],
  ],
  [
    "closes come before opens",
    [[w("b", 9000)]],
    pub(w("a", 8080)),
    ["close tcp:127.0.0.1:8080", "open tcp:127.0.0.1:9000"],
    [],
  ],
])("%s", (_name, wanted, published, actions, conflicts) => {
  expect(summary(plan(wanted as WantedPort[][], published))).toEqual({ actions, conflicts });
});

test("held keys (failed binds) are not reopened until the next resync", () => {
  const p = plan([[w("a", 8080), w("a", 8081)]], pub(), new Set([portKey("tcp", "127.0.0.1", 8081)]));
  expect(summary(p).actions).toEqual(["open tcp:127.0.0.1:8080"]);
});

test("plan is idempotent: applying it leaves nothing to do", () => {
  const wanted = [
    [w("a", 8080), w("a", 8081)],
    [w("b", 8081), w("b", 9000)],
  ];
  const published = new Map<string, WantedPort>([
    [w("c", 7000).key, w("c", 7000)],
    [w("a", 8080).key, w("a", 8080, "172.17.0.1")],
  ]);
  for (const a of plan(wanted, published).actions) {
    if (a.kind === "close") published.delete(a.key);
    else published.set(a.want.key, a.want);
  }
  expect(plan(wanted, published).actions).toEqual([]);
});
