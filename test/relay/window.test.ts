import { describe, expect, test } from "bun:test";
import { RecvWindow, SendCredit } from "../../src/relay/window.ts";

describe("SendCredit", () => {
  test("starts at zero: nothing may be sent before the first Window", () => {
    expect(new SendCredit().available).toBe(0);
  });
  test.each([
    [[65536], 0, 65536],
    [[65536, 131072], 1000, 130072],
    [[131072, 65536], 0, 131072], // a stale lower Window never shrinks credit
  ])("windows %p after sending %i leave %i", (seqs, sent, left) => {
    const c = new SendCredit();
    for (const s of seqs) c.update(s);
    c.consume(sent);
    expect(c.available).toBe(left);
  });
  test("sending past credit throws", () => {
    const c = new SendCredit();
    c.update(10);
    expect(() => c.consume(11)).toThrow(RangeError);
  });
});

describe("RecvWindow", () => {
  test("advertises its size, refuses bytes past it, re-grants at half", () => {
    const w = new RecvWindow(100);
    expect(w.open()).toBe(100);
    expect(w.receive(60)).toBe(true);
    expect(w.receive(41)).toBe(false); // 101 > 100: a protocol error for the caller
    expect(w.consume(40)).toBeNull(); // 60 credit left of 100: not below half
    expect(w.consume(20)).toBe(160); // 40 left < 50: new limit consumed + size
    expect(w.receive(100)).toBe(true);
    expect(w.buffered).toBe(100);
    expect(w.receive(1)).toBe(false);
  });
  test("buffered never exceeds the window whatever the order of events", () => {
    const w = new RecvWindow(1000);
    w.open();
    let seed = 7;
    for (let i = 0; i < 10_000; i++) {
      seed = (seed * 48271) % 2147483647;
      const n = seed % 300;
      if (seed % 2) w.receive(Math.min(n, w.advertised - w.received));
      else w.consume(Math.min(n, w.buffered));
      expect(w.buffered).toBeLessThanOrEqual(1000);
      expect(w.advertised - w.consumed).toBeLessThanOrEqual(1000);
    }
  });
});
