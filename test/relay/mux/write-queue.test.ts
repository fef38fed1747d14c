import { describe, expect, test } from "bun:test";
import { WriteQueue } from "../../../src/relay/mux/write-queue.ts";

describe("the pipe's write queue", () => {
  test("random small and large pieces, a writer that takes random amounts: the bytes come out whole and in order", () => {
    let seed = 12345;
    const r = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const q = new WriteQueue();
    const sent: number[] = [];
    const out: number[] = [];
    for (let round = 0; round < 200; round++) {
      for (let k = Math.floor(r() * 6); k > 0; k--) {
        const len = r() < 0.3 ? 16 * 1024 + Math.floor(r() * 100_000) : Math.floor(r() * 300);
        const piece = Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
        sent.push(...piece);
        q.push(piece);
      }
      while (q.bytes > 0) {
        const res = q.writeNext((buf) => {
          const n = r() < 0.3 ? Math.floor(r() * buf.length) : buf.length;
          out.push(...buf.subarray(0, n));
          return n;
        });
        if (res.full) break; // a full pipe: the rest waits for the next round
      }
    }
    while (q.bytes > 0)
      q.writeNext((buf) => {
        out.push(...buf);
        return buf.length;
      });
    expect(out.length).toBe(sent.length);
    expect(Buffer.from(out).equals(Buffer.from(sent))).toBe(true);
  });

  test("a large piece is written as the very view it was queued as; small ones around it share one write", () => {
    const q = new WriteQueue();
    const header = Uint8Array.of(1, 2, 3);
    const payload = new Uint8Array(64 * 1024).fill(9);
    q.push(header);
    q.push(Uint8Array.of(4));
    q.push(payload);
    const writes: Uint8Array[] = [];
    while (q.bytes > 0)
      q.writeNext((buf) => {
        writes.push(buf);
        return buf.length;
      });
    expect(writes.map((w) => w.length)).toEqual([4, 64 * 1024]);
    expect([...writes[0]!]).toEqual([1, 2, 3, 4]);
    expect(writes[1]).toBe(payload);
  });

  test("a closed pipe (-1) leaves the queue as it was", () => {
    const q = new WriteQueue();
    q.push(Uint8Array.of(1, 2));
    expect(q.writeNext(() => -1)).toEqual({ written: -1, full: false });
    expect(q.bytes).toBe(2);
  });
});
