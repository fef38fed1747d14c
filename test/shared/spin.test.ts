/**
 * --spin's thread, in this process (Linux): it runs at SCHED_IDLE, spins while relay activity
 * keeps poking it, and sleeps (uses no CPU) once the pokes stop.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { poke, startSpinner } from "../../src/shared/spin.ts";
import { pipeSettings } from "../../src/cli/common.ts";

/** this process's threads: id, scheduling policy (5 = SCHED_IDLE) and CPU ticks used */
function threads(): { tid: string; policy: number; ticks: number }[] {
  return readdirSync("/proc/self/task").map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // after the name: state is field 3, utime 14, stime 15, policy 41 (1-based in proc(5))
    return { tid, policy: Number(f[38]), ticks: Number(f[11]) + Number(f[12]) };
  });
}

test("the spinning thread runs at SCHED_IDLE, spins while poked and sleeps when the pokes stop", async () => {
  expect(startSpinner(0)).toBeNull();
  const s = startSpinner(2)!;
  expect(await s.ready).toBe(true);
  expect(startSpinner(2)).toBe(s); // one per process
  const idle = threads().filter((t) => t.policy === 5);
  expect(idle.length).toBe(1);
  const tid = idle[0]!.tid;
  const ticks = () => threads().find((t) => t.tid === tid)!.ticks;
  // poked for 300 ms: it spins (ticks are 10 ms each)
  const t0 = ticks();
  const end = performance.now() + 300;
  while (performance.now() < end) {
    poke();
    await Bun.sleep(1);
  }
  expect(ticks() - t0).toBeGreaterThanOrEqual(5);
  // no pokes: within its 2 ms window it stops, and half a second later it has used nothing
  await Bun.sleep(100);
  const t1 = ticks();
  await Bun.sleep(500);
  expect(ticks() - t1).toBeLessThanOrEqual(1);
});

test("--spin: a duration up to 100 ms, Linux only; errors name the flag", () => {
  expect(pipeSettings({ spin: "1ms" }, "linux").spinMs).toBe(1);
  expect(pipeSettings({}, "linux").spinMs).toBe(0);
  expect(() => pipeSettings({ spin: "fast" }, "linux")).toThrow('--spin: "fast" is not a duration');
  expect(() => pipeSettings({ spin: "1s" }, "linux")).toThrow("--spin: 1000 ms is too long");
  expect(() => pipeSettings({ spin: "1ms" }, "darwin")).toThrow("--spin is for Linux only");
  expect(pipeSettings({ spin: "0" }, "darwin").spinMs).toBe(0);
});
