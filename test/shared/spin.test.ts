/**
 * --spin's thread, in this process (Linux): it runs at SCHED_IDLE, is running (or runnable) while
 * relay activity keeps poking it, and asleep once the pokes stop. Its state is read from /proc,
 * not its CPU time: a SCHED_IDLE thread gets no CPU at all on a busy machine, by design.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { pipeSettings } from "../../src/cli/common.ts";
import { cpuQuota, poke, startSpinner } from "../../src/shared/spin.ts";
import { until } from "../helpers/until.ts";

/** this process's threads: id, state letter and scheduling policy (5 = SCHED_IDLE); a thread may exit meanwhile */
function threads(): { tid: string; state: string; policy: number }[] {
  return readdirSync("/proc/self/task").flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // after the name: state is field 3 and policy field 41 of proc(5)
      return [{ tid, state: f[0]!, policy: Number(f[38]) }];
    } catch {
      return [];
    }
  });
}

test("the spinning thread runs at SCHED_IDLE, spins while poked and sleeps when the pokes stop", async () => {
  expect(startSpinner(0)).toBeNull();
  // the spinner is a new SCHED_IDLE thread (threads it starts later, e.g. its JIT's, inherit the
  // policy; a test runner may have some already): the main thread never is one
  const before = new Set(
    threads()
      .filter((t) => t.policy === 5)
      .map((t) => t.tid),
  );
  // a 50 ms window: on a loaded machine this loop's 1 ms sleeps can take far longer
  const s = startSpinner(50)!;
  expect(await s.ready).toBeNull();
  expect(startSpinner(50)).toBe(s); // one per process
  const idle = () => threads().filter((t) => t.policy === 5 && !before.has(t.tid));
  expect(idle().length).toBeGreaterThanOrEqual(1);
  expect(threads().find((t) => t.tid === String(process.pid))!.policy).toBe(0);
  // R when any of them runs (the spinner), S when all of them sleep
  const state = () => (idle().some((t) => t.state === "R") ? "R" : "S");
  await until(() => state() === "S", "the thread to wait for work"); // nothing poked it yet
  // poked every millisecond or so: it spins (R: running, or waiting for a CPU), whatever the load;
  // the hook the transports are given, and the module's poke() the endpoints still call
  s.poke();
  await until(() => state() === "R", "the thread to spin", 5000);
  let checks = 0;
  let spinning = 0;
  const end = performance.now() + 300;
  while (performance.now() < end) {
    if (checks % 2) s.poke();
    else poke();
    checks++;
    if (state() === "R") spinning++;
    await Bun.sleep(1);
  }
  expect(spinning).toBeGreaterThanOrEqual(checks * 0.8);
  // no pokes: within its window it stops and sleeps again, and stays asleep
  await until(() => state() === "S", "the thread to sleep", 5000);
  let woke = 0;
  const quiet = performance.now() + 200;
  while (performance.now() < quiet) {
    if (state() !== "S") woke++;
    await Bun.sleep(10); // pacing the looks, not waiting for a state
  }
  expect(woke).toBe(0);
});

test("--spin: a duration up to 100 ms, Linux only; errors name the flag", () => {
  expect(pipeSettings({ spin: "1ms" }, { uid: 0, platform: "linux" }).spinMs).toBe(1);
  expect(pipeSettings({}, { uid: 0, platform: "linux" }).spinMs).toBe(0);
  expect(() => pipeSettings({ spin: "fast" }, { uid: 0, platform: "linux" })).toThrow(
    '--spin: "fast" is not a duration',
  );
  expect(() => pipeSettings({ spin: "1s" }, { uid: 0, platform: "linux" })).toThrow("--spin: 1000 ms is too long");
  expect(() => pipeSettings({ spin: "1ms" }, { uid: 0, platform: "darwin" })).toThrow("--spin is for Linux only");
  expect(pipeSettings({ spin: "0" }, { uid: 0, platform: "darwin" }).spinMs).toBe(0);
});

test("a CPU quota on the cgroup or any above it is found (cgroup v2 and v1); none means null", () => {
  const fs = (files: Record<string, string>) => (p: string) => files[p] ?? null;
  expect(
    cpuQuota(
      fs({
        "/proc/self/cgroup": "0::/system.slice/edgeport.service\n",
        "/sys/fs/cgroup/system.slice/edgeport.service/cpu.max": "max 100000\n",
        "/sys/fs/cgroup/system.slice/cpu.max": "50000 100000\n",
      }),
    ),
  ).toBe("/sys/fs/cgroup/system.slice/cpu.max = 50000 100000");
  expect(cpuQuota(fs({ "/proc/self/cgroup": "0::/a\n", "/sys/fs/cgroup/a/cpu.max": "max 100000" }))).toBeNull();
  expect(
    cpuQuota(
      fs({
        "/proc/self/cgroup": "4:cpu,cpuacct:/docker/abc\n1:name=systemd:/x\n",
        "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "30000\n",
      }),
    ),
  ).toBe("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us = 30000");
  expect(
    cpuQuota(fs({ "/proc/self/cgroup": "4:cpu,cpuacct:/\n", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n" })),
  ).toBeNull();
  expect(cpuQuota(fs({}))).toBeNull();
});
