import { describe, expect, test } from "bun:test";
import { GROW_WITHIN_MS, RecvWindow, SendCredit, WindowBudget } from "../../../src/relay/mux/window.ts";

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

describe("RecvWindow growth", () => {
  const clock = () => {
    const c = { t: 0, now: () => c.t };
    return c;
  };

  test("doubles when the peer used all its credit and half went by within GROW_WITHIN_MS, up to max", () => {
    const c = clock();
    const w = new RecvWindow(100, { max: 400, now: c.now });
    expect(w.open()).toBe(100);
    const sizes: number[] = [];
    for (let i = 0; i < 6; i++) {
      expect(w.receive(w.advertised - w.received)).toBe(true); // the peer sends every byte it may
      c.t += 1;
      const seq = w.consume(w.buffered);
      expect(seq).toBe(w.consumed + w.size);
      sizes.push(w.size);
    }
    expect(sizes).toEqual([200, 400, 400, 400, 400, 400]);
  });

  test("does not grow for a slow destination: half a window took longer than GROW_WITHIN_MS", () => {
    const c = clock();
    const w = new RecvWindow(100, { max: 400, now: c.now });
    w.open();
    for (let i = 0; i < 5; i++) {
      w.receive(w.advertised - w.received);
      c.t += GROW_WITHIN_MS + 1;
      expect(w.consume(w.buffered)).not.toBeNull();
    }
    expect(w.size).toBe(100);
  });

  test("does not grow when the peer never ran out of credit (it sends less than it may)", () => {
    const c = clock();
    const w = new RecvWindow(100, { max: 400, now: c.now });
    w.open();
    for (let i = 0; i < 20; i++) {
      w.receive(30);
      c.t += 0.1;
      w.consume(30);
    }
    expect(w.size).toBe(100);
  });

  test("a stalled destination holds at most the window it had", () => {
    const c = clock();
    const w = new RecvWindow(100, { max: 400, now: c.now });
    w.open();
    w.receive(100);
    c.t += 1;
    w.consume(100); // fast at first: grows to 200
    expect(w.size).toBe(200);
    w.receive(w.advertised - w.received); // then nobody reads
    expect(w.receive(1)).toBe(false);
    expect(w.buffered).toBe(200);
  });

  test("growth comes out of the session's budget and goes back when the channel ends", () => {
    const c = clock();
    const budget = new WindowBudget(150);
    const a = new RecvWindow(100, { max: 800, budget, now: c.now });
    const b = new RecvWindow(100, { max: 800, budget, now: c.now });
    for (const w of [a, b]) w.open();
    const burst = (w: RecvWindow) => {
      w.receive(w.advertised - w.received);
      c.t += 1;
      w.consume(w.buffered);
    };
    burst(a); // +100
    burst(b); // +50: what is left
    burst(a); // nothing left
    expect([a.size, b.size, budget.available]).toEqual([200, 150, 0]);
    a.release();
    expect(budget.available).toBe(100);
    a.release(); // again: nothing more comes back
    expect(budget.available).toBe(100);
    burst(b); // +100 from a's return
    expect(b.size).toBe(250);
  });

  test("the advertised credit never exceeds the current window, with growth, whatever the order of events", () => {
    let t = 0;
    const w = new RecvWindow(1000, { max: 16_000, now: () => t });
    w.open();
    let seed = 11;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 48271) % 2147483647;
      const n = seed % 700;
      t += (seed % 7) / 2;
      if (seed % 3) w.receive(Math.min(n, w.advertised - w.received));
      else w.consume(Math.min(n, w.buffered));
      expect(w.buffered).toBeLessThanOrEqual(w.size);
      expect(w.advertised - w.consumed).toBeLessThanOrEqual(w.size);
      expect(w.size).toBeLessThanOrEqual(16_000);
    }
    expect(w.size).toBeGreaterThan(1000); // the random walk did make it grow
  });
});
