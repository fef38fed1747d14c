/**
 * Issue 20, item 3: the daemon keeps its ad-hoc specs in a store and restores them when it starts.
 * A restored spec that fails now is kept (wanted, reported, retried at each resync), never a crash.
 */
import { afterEach, expect, test } from "bun:test";
import { createConsola, type LogObject } from "consola";
import { createDaemon, type Daemon } from "../../src/publisher/daemon.ts";
import { createPortStore, type PortStore } from "../../src/publisher/port-store.ts";
import type { StateFile } from "../../src/publisher/state-file.ts";
import type { RelayClient } from "../../src/relay/host/relay-client.ts";
import { EdgeportError } from "../../src/shared/errors.ts";
import { until } from "../helpers/until.ts";
import { fakeListeners } from "./fake-listeners.ts";

const relay = {
  description: "unix:///fake/pipe.sock",
  current: null,
  counters: () => ({ reconnects: 0, resets: 0, failures: 0 }),
} as unknown as RelayClient;
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

function memoryStore(initial: StateFile["ports"] = []) {
  const file: { data: StateFile | null } = { data: null };
  const store = createPortStore("/state/ports.json", initial, {
    platform: "linux",
    write: (_, d) => (file.data = structuredClone(d)),
  });
  return { store, file };
}

function daemon(store: PortStore, resyncMs = 60_000) {
  const l = fakeListeners();
  const lines: string[] = [];
  const log = createConsola({ level: 5, reporters: [{ log: (o: LogObject) => lines.push(o.args.join(" ")) }] });
  const d = createDaemon({
    engine: null,
    relay,
    binding: "local-default",
    resyncMs,
    pipeWaitMs: 1000,
    udp: { idleMs: 120_000, maxFlows: 4096 },
    log,
    openListener: l.open,
    store,
  });
  return { d, l, lines };
}

async function start(d: Daemon): Promise<void> {
  const ctl = new AbortController();
  const done = d.run(ctl.signal);
  stops.push(async () => {
    ctl.abort();
    await done;
  });
}

test("publish keeps an ad-hoc spec in the store (persisted in the state), unpublish removes it; docker-proxy's are not kept", async () => {
  const { store, file } = memoryStore();
  const { d } = daemon(store);
  const r = await d.publish("127.0.0.1:8080:10.0.0.2:80", "ad-hoc", { proxyProtocol: true });
  expect(file.data?.ports).toEqual([{ spec: "127.0.0.1:8080:10.0.0.2:80", proxyProtocol: true }]);
  expect(d.state().ports[0]!.source).toEqual({ kind: "ad-hoc", persisted: true });
  await d.publishProxy({
    proto: "tcp",
    hostIp: "0.0.0.0",
    hostPort: 9000,
    containerIp: "172.17.0.2",
    containerPort: 80,
  });
  expect(file.data?.ports).toHaveLength(1);
  expect(await d.unpublish(r.id)).toBe(true);
  expect(file.data?.ports).toEqual([]);
});

test("at start every stored spec is published again; one that fails is kept, reported and retried at the resync", async () => {
  const { store, file } = memoryStore([{ spec: "127.0.0.1:8080:10.0.0.2:80" }, { spec: "127.0.0.1:8081:10.0.0.2:81" }]);
  const { d, l, lines } = daemon(store, 30);
  l.failing.set("tcp 127.0.0.1:8081", new EdgeportError("E_PORT_IN_USE", "cannot listen on 127.0.0.1:8081: in use"));
  await start(d);
  await until(() => d.state().ports.length === 2, "both restored specs in the state");
  expect(d.state().ports.map((p) => [p.key, p.status, p.source])).toEqual([
    ["tcp:127.0.0.1:8080", "published", { kind: "ad-hoc", persisted: true }],
    ["tcp:127.0.0.1:8081", "failed", { kind: "ad-hoc", persisted: true }],
  ]);
  expect(
    lines.some((x) => /8081.* is wanted but not published: cannot listen on 127\.0\.0\.1:8081: in use/.test(x)),
  ).toBe(true);
  expect(lines.some((x) => /in use; retrying at the next resync/.test(x))).toBe(true);
  expect(store.list()).toHaveLength(2); // kept in the file
  l.failing.clear();
  await until(() => d.state().ports.every((p) => p.status === "published"), "the failed one bound at a resync");
  expect(file.data).toBeNull(); // restoring wrote nothing
});

test("a stored spec that cannot be resolved waits (no crash), and unpublish by its spec drops it", async () => {
  const { store } = memoryStore([{ spec: "127.0.0.1:8080:web:80" }, { spec: "127.0.0.1:8081:10.0.0.2:81" }]);
  const { d, lines } = daemon(store);
  await start(d);
  await until(() => d.state().ports.length === 1, "the resolvable spec restored");
  expect(
    lines.some((x) => /ad-hoc 127\.0\.0\.1:8080:web:80 \(restored from \/state\/ports\.json\): .*no engine/.test(x)),
  ).toBe(true);
  expect(await d.unpublish("127.0.0.1:8080:web:80")).toBe(true);
  expect(store.list()).toEqual([{ spec: "127.0.0.1:8081:10.0.0.2:81" }]);
});

test("a store that cannot be written: the port stays published, not persisted, and the log says so", async () => {
  const store = createPortStore("/state/ports.json", [], {
    platform: "linux",
    write: () => {
      throw new Error("EROFS: read-only file system");
    },
  });
  const { d, lines } = daemon(store);
  const r = await d.publish("127.0.0.1:8080:10.0.0.2:80");
  expect(r.ports[0]!.source).toEqual({ kind: "ad-hoc", persisted: false });
  expect(lines.some((x) => /not kept across restarts: cannot write \/state\/ports\.json: EROFS/.test(x))).toBe(true);
});

test("a spec published with keep: false (the config file's publish list) is not written to the store, nor when published again", async () => {
  const { store, file } = memoryStore();
  const { d } = daemon(store);
  await d.publish("127.0.0.1:8082:10.0.0.2:82", "ad-hoc", { keep: false });
  await d.publish("127.0.0.1:8082:10.0.0.2:82", "ad-hoc", { keep: false });
  expect(file.data?.ports ?? []).toEqual([]);
  expect(d.state().ports[0]!.source).toEqual({ kind: "ad-hoc", persisted: false });
  await d.publish("127.0.0.1:8083:10.0.0.2:83");
  expect(file.data?.ports).toEqual([{ spec: "127.0.0.1:8083:10.0.0.2:83" }]);
});
