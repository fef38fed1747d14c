import { expect, test } from "bun:test";
import { FlowTable } from "../../../src/relay/endpoints/flow-table.ts";

/** A table of named flows on a fake clock. */
function table(idleMs = 100, maxFlows = 3) {
  const clock = { t: 1000 };
  const flows = new FlowTable<string>({ idleMs, maxFlows, now: () => clock.t });
  return { clock, flows, keys: () => [...flows.values()] };
}

test("flows are kept least recently active first; traffic either way (touch) moves a flow to the end", () => {
  const { flows, keys } = table();
  expect(flows.add("a", "a")).toBeNull();
  expect(flows.add("b", "b")).toBeNull();
  expect(flows.add("c", "c")).toBeNull();
  expect(keys()).toEqual(["a", "b", "c"]);
  expect(flows.touch("a")).toBe(true);
  expect(keys()).toEqual(["b", "c", "a"]);
  expect(flows.touch("nobody")).toBe(false);
  expect(flows.get("b")).toBe("b");
  expect(flows.size).toBe(3);
});

test("at the cap, adding evicts and returns the least recently active flow, out of the table", () => {
  const { flows, keys } = table(100, 2);
  flows.add("a", "a");
  flows.add("b", "b");
  flows.touch("a");
  expect(flows.add("c", "c")).toEqual({ key: "b", flow: "b" });
  expect(keys()).toEqual(["a", "c"]);
  expect(flows.get("b")).toBeUndefined();
  expect(flows.add("d", "d")).toEqual({ key: "a", flow: "a" });
  expect(flows.size).toBe(2);
});

test("re-adding a key replaces its flow without evicting another", () => {
  const { flows, keys } = table(100, 2);
  flows.add("a", "a1");
  flows.add("b", "b");
  expect(flows.add("a", "a2")).toBeNull();
  expect(keys()).toEqual(["b", "a2"]);
});

test("expire: flows idle for idleMs or more go, oldest first, with their idle time; a touched flow stays", () => {
  const { clock, flows, keys } = table(100, 10);
  flows.add("a", "a");
  clock.t += 30;
  flows.add("b", "b");
  clock.t += 30;
  flows.add("c", "c");
  clock.t += 39; // a idle 99, b 69, c 39
  expect(flows.expire()).toEqual([]);
  flows.touch("a"); // a idle 0
  clock.t += 31; // a 31, b 100, c 70
  expect(flows.expire()).toEqual([{ key: "b", flow: "b", idleMs: 100 }]);
  clock.t += 70; // a 101, c 140
  expect(flows.expire()).toEqual([
    { key: "c", flow: "c", idleMs: 140 },
    { key: "a", flow: "a", idleMs: 101 },
  ]);
  expect(keys()).toEqual([]);
});

test("delete with a flow forgets only that flow: a newer one under the same key stays", () => {
  const { flows } = table();
  flows.add("a", "old");
  flows.add("a", "new");
  expect(flows.delete("a", "old")).toBe(false);
  expect(flows.get("a")).toBe("new");
  expect(flows.delete("a", "new")).toBe(true);
  expect(flows.delete("a")).toBe(false);
  flows.add("b", "b");
  expect(flows.delete("b")).toBe(true);
});

test("clear removes and returns every flow, least recently active first", () => {
  const { flows } = table();
  flows.add("a", "a");
  flows.add("b", "b");
  flows.touch("a");
  expect(flows.clear()).toEqual([
    { key: "b", flow: "b" },
    { key: "a", flow: "a" },
  ]);
  expect(flows.size).toBe(0);
});
