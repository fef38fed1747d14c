/** The container view's rules on their own: a late inspect never undoes a newer event; a full list replaces the view. */
import { expect, test } from "bun:test";
import { createConsola } from "consola";
import { createContainerView } from "../../src/events/container-view.ts";
import type { Engine } from "../../src/events/engine.ts";
import { ContainerInspect } from "../../src/events/schemas.ts";
import { until } from "../helpers/until.ts";

const quiet = createConsola({ level: -999 });
const running = (id: string) =>
  ContainerInspect.parse({ Id: id, Name: `/${id}`, State: { Running: true }, NetworkSettings: { Networks: {} } });

function engineWith(o: Partial<Engine>): Engine {
  return {
    url: "unix:///scripted.sock",
    negotiate: async () => ({ apiVersion: "1.41" }),
    ping: async () => {},
    networks: async () => [],
    subnets: async () => [],
    runningContainers: async () => [],
    inspect: async () => null,
    events: async () => {},
    ...o,
  };
}
const event = (Action: string, id: string) =>
  ({ Type: "container", Action, Actor: { ID: id, Attributes: {} }, time: 1 }) as const;

test("a die that arrives while the start's inspect is in flight wins over the inspect's late answer", async () => {
  const { promise: answer, resolve } = Promise.withResolvers<ContainerInspect>();
  const changes: string[][] = [];
  const view = createContainerView({
    engine: engineWith({ inspect: () => answer }),
    log: quiet,
    isPending: () => false,
    onChange: (c) => changes.push([...c.keys()]),
  });
  view.onEvent(event("start", "a"));
  view.onEvent(event("die", "a"));
  resolve(running("a"));
  await answer;
  await Bun.sleep(0);
  expect(view.containers.has("a")).toBe(false);
  expect(changes.flat()).not.toContain("a");
});

test("a full list replaces the view and reports once, as full", async () => {
  const fulls: boolean[] = [];
  let list = ["a", "b"];
  const view = createContainerView({
    engine: engineWith({ runningContainers: async () => list, inspect: async (id) => running(id) }),
    log: quiet,
    isPending: () => false,
    onChange: (_c, full) => fulls.push(full),
  });
  await view.fullSync();
  await until(() => fulls.length === 1, "the first report");
  expect([...view.containers.keys()].sort()).toEqual(["a", "b"]);
  list = ["b"];
  await view.fullSync();
  await until(() => fulls.length === 2, "the second report");
  expect([...view.containers.keys()]).toEqual(["b"]);
  expect(fulls).toEqual([true, true]);
});

test("events other than start-like ones and network (dis)connects do not inspect", async () => {
  let inspects = 0;
  const view = createContainerView({
    engine: engineWith({
      inspect: async (id) => {
        inspects++;
        return running(id);
      },
    }),
    log: quiet,
    isPending: () => false,
    onChange: () => {},
  });
  view.onEvent(event("exec_start", "a"));
  view.onEvent(event("attach", "a"));
  view.onEvent(event("start", "b"));
  await until(() => view.containers.has("b"), "b in the view");
  expect(inspects).toBe(1);
});
