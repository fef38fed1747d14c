/**
 * The daemon on its own: a stand-in relay client (no pipe), an injected listener factory, and a
 * scripted engine. The real listeners and the real binary are tested in test/e2e (api, run, udp).
 */
import { afterEach, expect, test } from "bun:test";
import { createConsola, type LogObject } from "consola";
import type { Engine } from "../../src/events/engine.ts";
import { ContainerInspect } from "../../src/events/schemas.ts";
import { createDaemon, type Daemon, type DaemonOptions } from "../../src/publisher/daemon.ts";
import type { RelayClient } from "../../src/relay/host/relay-client.ts";
import { EdgeportError } from "../../src/shared/errors.ts";
import { until } from "../helpers/until.ts";
import { fakeListeners } from "./fake-listeners.ts";

const relay = {
  description: "unix:///fake/pipe.sock",
  current: null,
  counters: () => ({ reconnects: 0, resets: 0, failures: 0 }),
} as unknown as RelayClient;

function logged() {
  const lines: { level: number; msg: string }[] = [];
  const log = createConsola({
    level: 5,
    reporters: [{ log: (o: LogObject) => lines.push({ level: o.level, msg: o.args.join(" ") }) }],
  });
  return { log, lines, has: (re: RegExp) => lines.some((l) => re.test(l.msg)) };
}

const web = (id: string, hostPort: string, ip = "172.17.0.2", startedAt = "2026-01-01T00:00:00Z") =>
  ContainerInspect.parse({
    Id: id,
    Name: `/${id}`,
    State: { Running: true, StartedAt: startedAt },
    HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: hostPort }] } },
    NetworkSettings: {
      Ports: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: hostPort }] },
      Networks: { bridge: { IPAddress: ip } },
    },
  });

function scriptedEngine(containers: Map<string, ContainerInspect>): Engine {
  return {
    url: "unix:///scripted.sock",
    negotiate: async () => ({ apiVersion: "1.41" }),
    ping: async () => {},
    networks: async () => [],
    subnets: async () => [],
    runningContainers: async () => [...containers.keys()],
    inspect: async (id) => containers.get(id) ?? [...containers.values()].find((c) => c.Name === `/${id}`) ?? null,
    events: ({ onOpen, signal }) =>
      new Promise<void>((resolve) => {
        onOpen?.();
        signal.addEventListener("abort", () => resolve());
      }),
  };
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

function daemon(o: Partial<DaemonOptions> = {}) {
  const l = fakeListeners();
  const logs = logged();
  const d = createDaemon({
    engine: null,
    relay,
    binding: "local-default",
    resyncMs: 60_000,
    pipeWaitMs: 1000,
    udp: { idleMs: 120_000, maxFlows: 4096 },
    log: logs.log,
    openListener: l.open,
    ...o,
  });
  return { d, l, logs };
}

function running(d: Daemon) {
  const ctl = new AbortController();
  const done = d.run(ctl.signal);
  const stop = async () => {
    ctl.abort();
    await done;
  };
  stops.push(stop);
  return stop;
}

test("publish opens one listener per mapping; the same spec again is the same id; unpublish by id or spec closes it", async () => {
  const { d, l } = daemon();
  const r = await d.publish("127.0.0.1:8080:10.0.0.2:80");
  expect(r.created).toBe(true);
  expect(r.id).toMatch(/^[0-9a-f]{12}$/);
  expect(r.ports).toMatchObject([
    { key: "tcp:127.0.0.1:8080", status: "published", source: { kind: "ad-hoc" }, target: "10.0.0.2:80" },
  ]);
  expect(l.live().map((x) => x.mapping)).toEqual([
    { hostIp: "127.0.0.1", hostPort: 8080, targetIp: "10.0.0.2", targetPort: 80, proto: "tcp" },
  ]);
  expect(await d.publish("127.0.0.1:8080:10.0.0.2:80")).toMatchObject({ id: r.id, created: false });
  expect(l.opened).toHaveLength(1);
  expect(await d.unpublish(r.id)).toBe(true);
  expect(l.live()).toHaveLength(0);
  expect(await d.unpublish(r.id)).toBe(false);
  const again = await d.publish("127.0.0.1:8080:10.0.0.2:80", "ad-hoc", { proxyProtocol: true });
  expect(again.id).not.toBe(r.id);
  expect(await d.unpublish("127.0.0.1:8080:10.0.0.2:80")).toBe(true);
  expect(d.state().ports).toEqual([]);
});

test("state rows carry traffic by listener kind: TCP connections, UDP flows and their counters", async () => {
  const { d, l } = daemon();
  await d.publish("127.0.0.1:9000:10.0.0.2:90/udp");
  await d.publish("127.0.0.1:9001:10.0.0.2:91");
  const [tcp, udp] = d.state().ports;
  expect(udp).toMatchObject({ proto: "udp", connections: 2, connectionsTotal: 5, bytesIn: 100, udp: l.udpStats });
  expect(tcp).toMatchObject({ proto: "tcp", connections: 1, connectionsTotal: 3, bytesIn: 30, bytesOut: 40 });
  expect(tcp!.udp).toBeUndefined();
  expect(d.state()).toMatchObject({ engine: null, pipe: { url: "unix:///fake/pipe.sock", up: false }, containers: 0 });
});

test.each([
  ["tcp", "127.0.0.1:7000-7001:10.0.0.2:70-71", "tcp 127.0.0.1:7001"],
  ["udp", "127.0.0.1:7000-7001:10.0.0.2:70-71/udp", "udp 127.0.0.1:7001"],
])(
  "a %s bind that fails rolls the whole spec back and says why (and not that it retries)",
  async (_, spec, failing) => {
    const { d, l, logs } = daemon();
    l.failing.set(failing, new EdgeportError("E_PORT_IN_USE", "cannot listen on 127.0.0.1:7001: in use"));
    const err = await d.publish(spec).catch((e) => e);
    expect(err).toBeInstanceOf(EdgeportError);
    expect(err.code).toBe("E_PORT_IN_USE");
    expect(err.message).toMatch(/in use; nothing of ".*" was published/);
    expect(l.live()).toHaveLength(0);
    expect(d.state().ports).toEqual([]);
    // rolled back: nothing is retried, and the log does not say otherwise
    expect(logs.has(/retrying at the next resync/)).toBe(false);
    expect(logs.lines.filter((x) => x.level === 1 && /in use; nothing of ".*" was published/.test(x.msg))).toHaveLength(
      1,
    );
    // nothing stayed behind: once the port is free the same spec publishes
    l.failing.clear();
    expect((await d.publish(spec)).created).toBe(true);
  },
);

test("a host port published by someone else is a conflict, never taken over", async () => {
  const { d } = daemon();
  const first = await d.publish("127.0.0.1:8080:10.0.0.2:80");
  const err = await d.publish("127.0.0.1:8080:10.0.0.3:80").catch((e) => e);
  expect(err.code).toBe("E_CONFLICT");
  expect(err.message).toContain(`ad-hoc ${first.id}`);
});

test("bad specs are E_BAD_SPEC; a container name needs an engine", async () => {
  const { d } = daemon({ rules: { reserved: (p) => (p === 22 ? "22 is reserved" : null), ignored: () => null } });
  for (const [spec, re] of [
    ["nope", /./],
    ["8080:web:80", /follows no engine/],
    ["8080:0.0.0.0:80", /is unspecified/],
    ["22:10.0.0.2:22", /22 is reserved/],
  ] as const) {
    const err = await d.publish(spec).catch((e) => e);
    expect([spec, err.code]).toEqual([spec, "E_BAD_SPEC"]);
    expect(err.message).toMatch(re);
  }
  expect(
    (await d.publish("127.0.0.1:9000:10.0.0.2:90/udp", "ad-hoc", { proxyProtocol: true }).catch((e) => e)).message,
  ).toMatch(/PROXY protocol is for TCP only/);
});

test("docker-proxy leases: 0.0.0.0 and :: share one entry, unpublished when the last is released", async () => {
  const { d, l } = daemon();
  const req = { proto: "tcp", hostPort: 8080, containerIp: "172.17.0.2", containerPort: 80 } as const;
  const a = await d.publishProxy({ ...req, hostIp: "0.0.0.0" });
  const b = await d.publishProxy({ ...req, hostIp: "::" });
  expect(b.id).toBe(a.id);
  expect(d.state().ports.map((p) => [p.key, p.source.kind])).toEqual([
    ["tcp:[::1]:8080", "docker-proxy"],
    ["tcp:127.0.0.1:8080", "docker-proxy"],
  ]);
  await d.releaseProxy(a.id);
  expect(l.live()).toHaveLength(2);
  await d.releaseProxy(a.id);
  expect(l.live()).toHaveLength(0);
});

test("containers: published from the engine, retargeted when the address changes, closed when gone; run closes all", async () => {
  const containers = new Map([["web", web("web", "8080")]]);
  const { d, l, logs } = daemon({ engine: scriptedEngine(containers), resyncMs: 20 });
  const stop = running(d);
  await until(() => d.state().ports.length === 1, "the container's port published");
  expect(d.state().ports[0]).toMatchObject({ id: "c-web", source: { kind: "container", containerName: "web" } });
  expect(d.state().engine).toEqual({ url: "unix:///scripted.sock", connected: true });
  containers.set("web", web("web", "8080", "172.17.0.9"));
  await until(() => l.opened[0]!.retargets.length === 1, "retargeted at the next resync");
  expect(l.opened[0]!.mapping.targetIp).toBe("172.17.0.9");
  expect(logs.has(/retargeted 127\.0\.0\.1:8080 -> 172\.17\.0\.9:80\/tcp \(container web\)/)).toBe(true);
  // a second container on the same host port loses: a conflict row, logged once
  containers.set("late", web("late", "8080", "172.17.0.3", "2026-01-02T00:00:00Z"));
  await until(() => d.state().ports.some((p) => p.status === "conflict"), "the conflict");
  expect(logs.lines.filter((x) => /late.*already published for container web/.test(x.msg))).toHaveLength(1);
  containers.clear();
  await until(() => d.state().ports.length === 0, "closed when the containers are gone");
  containers.set("web", web("web", "8081"));
  await until(() => l.live().length === 1, "published again");
  await stop();
  expect(l.live()).toHaveLength(0);
});

test("a container's port that cannot be bound is a failed row, logged once, retried at the next resync", async () => {
  const containers = new Map([["web", web("web", "8080")]]);
  const { d, l, logs } = daemon({ engine: scriptedEngine(containers), resyncMs: 20 });
  l.failing.set("tcp 127.0.0.1:8080", new EdgeportError("E_PORT_IN_USE", "cannot listen on 127.0.0.1:8080: in use"));
  running(d);
  await until(() => d.state().ports[0]?.status === "failed", "a failed row");
  expect(d.state().ports[0]).toMatchObject({ code: "E_PORT_IN_USE", error: "cannot listen on 127.0.0.1:8080: in use" });
  l.failing.clear();
  await until(() => d.state().ports[0]?.status === "published", "bound at a later resync");
  expect(logs.lines.filter((x) => /retrying at the next resync/.test(x.msg))).toHaveLength(1);
});
