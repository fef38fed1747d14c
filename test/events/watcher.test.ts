/** The watcher's ordering rules, with the Engine role played by a scripted stand-in. */
import { expect, test } from "bun:test";
import { createConsola } from "consola";
import type { Engine } from "../../src/events/engine.ts";
import { ContainerInspect, type EngineEvent } from "../../src/events/schemas.ts";
import { wantedPorts } from "../../src/events/wanted.ts";
import { createWatcher } from "../../src/events/watcher.ts";
import { until } from "../helpers/memory-pipe.ts";

const quiet = createConsola({ level: -999 });
const container = (id: string, running: boolean, ports: boolean) =>
  ContainerInspect.parse({
    Id: id,
    Name: `/${id}`,
    State: { Running: running },
    HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "", HostPort: "8080" }] } },
    NetworkSettings: {
      Ports: ports ? { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }] } : {},
      Networks: { bridge: { IPAddress: "172.17.0.2" } },
    },
  });

function scripted(o: { inspect: (id: string, n: number) => Promise<ContainerInspect | null>; running?: string[] }) {
  const calls = new Map<string, number>();
  let emit: (e: EngineEvent) => void = () => {};
  const engine: Engine = {
    url: "unix:///scripted.sock",
    negotiate: async () => ({ apiVersion: "1.41" }),
    ping: async () => {},
    networks: async () => [],
    subnets: async () => [],
    runningContainers: async () => o.running ?? [],
    inspect: (id) => {
      const n = (calls.get(id) ?? 0) + 1;
      calls.set(id, n);
      return o.inspect(id, n);
    },
    events: ({ onEvent, onOpen, signal }) =>
      new Promise<void>((resolve) => {
        emit = onEvent;
        onOpen?.();
        signal.addEventListener("abort", () => resolve());
      }),
  };
  return {
    engine,
    calls,
    emit: (Action: string, id: string) =>
      emit({ Type: "container", Action, Actor: { ID: id, Attributes: {} }, time: 1 }),
  };
}

test("a started container whose ports are not visible yet is inspected again until they are", async () => {
  const s = scripted({ inspect: async (id, n) => container(id, true, n >= 3) });
  const views: number[] = [];
  const w = createWatcher({
    engine: s.engine,
    log: quiet,
    resyncMs: 60_000,
    isPending: (c) => wantedPorts(c, "local-default").pending,
    onChange: (m) => views.push(m.size),
  });
  const ctl = new AbortController();
  const running = w.run(ctl.signal);
  await until(() => w.connected, "connected");
  s.emit("start", "web");
  await until(() => s.calls.get("web") === 3, "three inspects");
  expect(wantedPorts(w.containers.get("web")!, "local-default").ports).toHaveLength(2);
  ctl.abort();
  await running;
});

test("a die that arrives while the start's inspect is still in flight wins", async () => {
  let release!: () => void;
  const slow = new Promise<void>((r) => {
    release = r;
  });
  const { promise: webAnswered, resolve: answered } = Promise.withResolvers<void>();
  const s = scripted({
    inspect: async (id) => {
      if (id !== "web") {
        await webAnswered; // the later container is answered after web's late answer
        return container(id, true, true);
      }
      await slow;
      answered();
      return container(id, true, true);
    },
  });
  const w = createWatcher({
    engine: s.engine,
    log: quiet,
    resyncMs: 60_000,
    isPending: () => false,
    onChange: () => {},
  });
  const ctl = new AbortController();
  const running = w.run(ctl.signal);
  await until(() => w.connected, "connected");
  s.emit("start", "web");
  s.emit("die", "web");
  release();
  // a later container, answered only after web's late answer came: once it is in, the watcher has
  // seen web's late (running) answer, which must not bring web back
  s.emit("start", "later");
  await until(() => w.containers.has("later"), "the later container");
  expect(s.calls.get("web")).toBe(1);
  expect(w.containers.has("web")).toBe(false);
  ctl.abort();
  await running;
});

test("the first list happens after the event stream is open, and events seen meanwhile are applied after it", async () => {
  const order: string[] = [];
  const s = scripted({
    running: ["old"],
    inspect: async (id) => {
      order.push(`inspect ${id}`);
      return container(id, true, true);
    },
  });
  const events = s.engine.events;
  s.engine.events = (o) => {
    order.push("events open");
    return events(o);
  };
  const w = createWatcher({
    engine: s.engine,
    log: quiet,
    resyncMs: 60_000,
    isPending: () => false,
    onChange: () => {},
  });
  const ctl = new AbortController();
  const running = w.run(ctl.signal);
  await until(() => w.connected, "connected");
  expect(order.slice(0, 2)).toEqual(["events open", "inspect old"]);
  ctl.abort();
  await running;
});
