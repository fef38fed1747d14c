import { expect, test } from "bun:test";
import { RepeatLimiter } from "../../../src/relay/forwarder/repeat-limiter.ts";

test("the first of a kind is logged, then one a minute with the count held back; kinds are apart", () => {
  const clock = { t: 0 };
  const r = new RepeatLimiter({ intervalMs: 60_000, now: () => clock.t });
  expect(r.hit("auth")).toEqual({ log: true, held: 0, sinceMs: 0 });
  let logged = 0;
  // a host redialling once a second for ten minutes
  for (let s = 1; s <= 600; s++) {
    clock.t = s * 1000;
    const v = r.hit("auth");
    if (v.log) {
      logged++;
      expect(v).toEqual({ log: true, held: 59, sinceMs: 60_000 });
    }
  }
  expect(logged).toBe(10);
  expect(r.hit("other").log).toBe(true);
  expect(r.hit("other").log).toBe(false);
});

test("a kind that stopped repeating is logged at once when it comes back, with what was held", () => {
  const clock = { t: 0 };
  const r = new RepeatLimiter({ intervalMs: 1000, now: () => clock.t });
  r.hit("x");
  clock.t = 10;
  r.hit("x");
  clock.t = 5000;
  expect(r.hit("x")).toEqual({ log: true, held: 1, sinceMs: 5000 });
});

test("at most 64 kinds are remembered: the keys may come from a peer", () => {
  const r = new RepeatLimiter({ intervalMs: 1000, now: () => 0 });
  for (let i = 0; i < 65; i++) expect(r.hit(`kind ${i}`).log).toBe(true);
  expect(r.hit("kind 0").log).toBe(true); // forgotten: the oldest went when the 65th came
  expect(r.hit("kind 64").log).toBe(false);
});
