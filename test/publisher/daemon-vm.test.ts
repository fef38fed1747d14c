/**
 * The daemon with the VM's listeners as its second source (vm-source.ts): rows of source vm, a
 * container or an ad-hoc entry taking the host port over, a host port that cannot be bound.
 */
import { afterEach, expect, test } from "bun:test";
import { createConsola } from "consola";
import type { Engine } from "../../src/events/engine.ts";
import { ContainerInspect } from "../../src/events/schemas.ts";
import { createDaemon, type DaemonOptions } from "../../src/publisher/daemon.ts";
import { type VmListenerState, type VmSource, vmWants } from "../../src/publisher/vm-source.ts";
import type { VmListener } from "../../src/relay/control/listeners.ts";
import type { RelayClient } from "../../src/relay/host/relay-client.ts";
import { vmListenerRules } from "../../src/shared/config-vm-listeners.ts";
import { EdgeportError } from "../../src/shared/errors.ts";
import { until } from "../helpers/until.ts";
import { fakeListeners } from "./fake-listeners.ts";

const relay = { description: "unix:///fake/pipe.sock", current: null, counters: () => ({}) } as unknown as RelayClient;
const quiet = createConsola({ level: -999 });

/** A VM source whose listeners the test sets. */
function stubVm() {
  let listeners: VmListener[] = [];
  let changed = () => {};
  let verdicts: VmListenerState[] = [];
  const src: VmSource = {
    accept() {},
    wants(others) {
      const r = vmWants(listeners, others, vmListenerRules({}));
      verdicts = r.verdicts;
      return r.wants;
    },
    state: () => verdicts,
    onChange(f) {
      changed = f;
    },
  };
  return {
    src,
    set(l: VmListener[]) {
      listeners = l;
      changed();
    },
  };
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

function start(o: Partial<DaemonOptions> = {}) {
  const l = fakeListeners();
  const vm = stubVm();
  const d = createDaemon({
    engine: null,
    relay,
    binding: "local-default",
    resyncMs: 60_000,
    pipeWaitMs: 1000,
    udp: { idleMs: 120_000, maxFlows: 4096 },
    log: quiet,
    openListener: l.open,
    vm: vm.src,
    ...o,
  });
  const ctl = new AbortController();
  const done = d.run(ctl.signal);
  stops.push(async () => {
    ctl.abort();
    await done;
  });
  return { d, l, vm };
}

const rows = (d: ReturnType<typeof start>["d"]) =>
  d.state().ports.map((p) => `${p.key} ${p.status} ${p.source.kind} ${p.source.process ?? p.container} ${p.id}`);

test("a VM listener: rows of source vm on 127.0.0.1 and ::1 with its process; gone when it stops", async () => {
  const { d, l, vm } = start();
  vm.set([{ proto: "tcp", ip: "0.0.0.0", port: 5173, process: "node" }]);
  await until(() => l.live().length === 2, "two listeners");
  expect(rows(d)).toEqual([
    "tcp:[::1]:5173 published vm node vm-tcp-5173",
    "tcp:127.0.0.1:5173 published vm node vm-tcp-5173",
  ]);
  expect(l.live().map((x) => `${x.mapping.hostIp} -> ${x.mapping.targetIp}:${x.mapping.targetPort}`)).toEqual([
    "127.0.0.1 -> 127.0.0.1:5173",
    "::1 -> 127.0.0.1:5173",
  ]);
  vm.set([]);
  await until(() => l.live().length === 0, "closed");
  expect(d.state().ports).toEqual([]);
});

test("an ad-hoc publish on a VM listener's host port takes it over (the VM listener yields, no conflict)", async () => {
  const { d, l, vm } = start();
  vm.set([{ proto: "tcp", ip: "127.0.0.1", port: 8080, process: "python3" }]);
  await until(() => l.live().length === 2, "the VM listener published");
  const r = await d.publish("127.0.0.1:8080:172.17.0.2:80");
  expect(r.created).toBe(true);
  expect(rows(d)).toEqual([`tcp:127.0.0.1:8080 published ad-hoc (ad-hoc) ${r.id}`]);
  expect(d.state().vmListeners).toMatchObject([{ port: 8080, status: "taken" }]);
});

test("a container's port wins over a VM listener of the same port", async () => {
  const web = ContainerInspect.parse({
    Id: "web1",
    Name: "/web",
    State: { Running: true, StartedAt: "2026-01-01T00:00:00Z" },
    HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "", HostPort: "8081" }] } },
    NetworkSettings: {
      Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8081" }] },
      Networks: { bridge: { IPAddress: "172.17.0.2" } },
    },
  });
  const engine = {
    url: "unix:///scripted.sock",
    negotiate: async () => ({ apiVersion: "1.41" }),
    ping: async () => {},
    networks: async () => [],
    subnets: async () => [],
    runningContainers: async () => ["web1"],
    inspect: async () => web,
    events: ({ onOpen, signal }) =>
      new Promise<void>((resolve) => {
        onOpen?.();
        signal.addEventListener("abort", () => resolve());
      }),
  } as Engine;
  const { d, l, vm } = start({ engine });
  await until(() => l.live().length > 0, "the container's port");
  vm.set([{ proto: "tcp", ip: "0.0.0.0", port: 8081, process: "node" }]);
  await until(() => (d.state().vmListeners ?? []).length === 1, "the VM listener seen");
  expect(d.state().ports.every((p) => p.source.kind === "container")).toBe(true);
  expect(d.state().vmListeners![0]!.reason).toBe("host port 8081 is published for web");
});

test("a host port someone on the host holds: a failed row, kept for the resync, no crash", async () => {
  const { d, l, vm } = start();
  l.failing.set("tcp 127.0.0.1:3000", new EdgeportError("E_PORT_IN_USE", "127.0.0.1:3000 is in use"));
  vm.set([{ proto: "tcp", ip: "0.0.0.0", port: 3000 }]);
  await until(() => d.state().ports.length === 2, "both rows");
  expect(rows(d)).toEqual([
    "tcp:[::1]:3000 published vm (vm) vm-tcp-3000",
    "tcp:127.0.0.1:3000 failed vm (vm) vm-tcp-3000",
  ]);
});
