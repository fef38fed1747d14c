/**
 * Spin before sleeping (`--spin`, off by default; Linux). On a VM whose idle vCPUs halt at once,
 * waking a process is a trip through the hypervisor, and a relay in the path pays it twice per
 * round trip (docs/performance.md). While traffic flows, a helper thread at the lowest priority
 * (SCHED_IDLE: within edgeport's cgroup it runs only when nothing else there wants the CPU, and any
 * woken thread preempts it) keeps a vCPU busy, so the relay's wake-ups land on a running CPU. It
 * spins for `windowMs` after the last activity, then sleeps on a futex until the next. Costs CPU
 * while traffic flows (up to one core on a busy port); nothing when idle. Against other cgroups
 * (containers, systemd services) the kernel shares CPU by cgroup weight, so the spinning does
 * compete with them; under a CPU quota it would spend the quota, so it refuses to run under one.
 */
import { readFileSync } from "node:fs";
import { libcNames } from "./libc.ts";

/**
 * The thread: lowers itself to SCHED_IDLE (libc from the names it is given; reported back), then
 * spins while pokes keep coming.
 */
const WORKER = `
const { dlopen, FFIType, ptr } = await import("bun:ffi");
function lowest(names) {
  let why = "";
  for (const name of names) {
    try {
      const libc = dlopen(name, { sched_setscheduler: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 } }).symbols;
      const idle = libc.sched_setscheduler(0, 5 /* SCHED_IDLE, this thread */, ptr(new Int32Array(1)));
      return { idle, why: idle === 0 ? "" : "sched_setscheduler(SCHED_IDLE) was refused" };
    } catch (e) {
      why = String(e && e.message ? e.message : e);
    }
  }
  return { idle: -1, why };
}
self.onmessage = (e) => {
  const { buf, windowMs, names } = e.data;
  const s = new Int32Array(buf); // [0] activity counter, [1] 1 while asleep
  const { idle, why } = lowest(names);
  postMessage({ idle, why });
  if (idle !== 0) return;
  let seen = Atomics.load(s, 0);
  for (;;) {
    Atomics.store(s, 1, 1);
    Atomics.wait(s, 0, seen);
    Atomics.store(s, 1, 0);
    let last = performance.now();
    for (;;) {
      const c = Atomics.load(s, 0);
      const now = performance.now();
      if (c !== seen) {
        seen = c;
        last = now;
      } else if (now - last > windowMs) break;
    }
  }
};
`;

let current: Spinner | null = null;

export interface Spinner {
  /** resolves null once the thread runs at SCHED_IDLE; else why not (and it is gone) */
  readonly ready: Promise<string | null>;
  /**
   * The activity hook: relay traffic keeps the spinner going, or wakes it (one futex call after it
   * fell asleep). A no-op until the thread runs. Injected into the transports (and endpoints).
   */
  readonly poke: () => void;
}

/** The hook to hand the relay when --spin is off. */
export const NO_ACTIVITY = (): void => {};

/**
 * A CPU quota on this process's cgroup or any above it (cgroup v2 cpu.max, v1 cpu.cfs_quota_us),
 * as text, or null. Spinning under a quota would spend it and get the relay itself throttled.
 */
export function cpuQuota(
  read: (path: string) => string | null = (p) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return null;
    }
  },
): string | null {
  const self = read("/proc/self/cgroup") ?? "";
  for (const line of self.split("\n")) {
    const [, controllers, path] = line.split(":");
    if (path === undefined) continue;
    const v2 = controllers === "";
    if (!v2 && !controllers!.split(",").includes("cpu")) continue;
    const root = v2 ? "/sys/fs/cgroup" : `/sys/fs/cgroup/${controllers}`;
    // the cgroup itself, then every one above it up to the root
    const parts = path.split("/").filter(Boolean);
    for (let n = parts.length; n >= 0; n--) {
      const file = `${root}${n ? `/${parts.slice(0, n).join("/")}` : ""}/${v2 ? "cpu.max" : "cpu.cfs_quota_us"}`;
      const q = read(file)?.trim();
      if (q && (v2 ? !q.startsWith("max") : q !== "-1")) return `${file} = ${q}`;
    }
  }
  return null;
}

/**
 * Starts the spinning thread (one per process; later calls return the first). Never spins at a
 * priority above the lowest: if SCHED_IDLE cannot be had, the thread ends and `ready` is false.
 */
export function startSpinner(windowMs: number): Spinner | null {
  if (windowMs <= 0) return null;
  if (current) return current;
  const buf = new SharedArrayBuffer(8);
  let state: Int32Array | null = null;
  const w = new Worker(URL.createObjectURL(new Blob([WORKER], { type: "application/javascript" })));
  w.unref();
  const spinner: Spinner = {
    poke() {
      const s = state;
      if (!s) return;
      Atomics.add(s, 0, 1);
      if (Atomics.load(s, 1) === 1) Atomics.notify(s, 0, 1);
    },
    ready: new Promise<string | null>((resolve) => {
      w.onmessage = (e: MessageEvent<{ idle: number; why: string }>) => {
        if (e.data.idle !== 0) {
          w.terminate();
          return resolve(e.data.why || "SCHED_IDLE is not available");
        }
        state = new Int32Array(buf);
        resolve(null);
      };
      w.onerror = (e) => resolve(`the thread failed: ${e.message}`);
    }),
  };
  w.postMessage({ buf, windowMs, names: libcNames() });
  current = spinner;
  return spinner;
}

/**
 * The process's spinner's hook, for the endpoints that do not take it injected yet
 * (relay/endpoints/socket-endpoint.ts, publisher/udp-listener.ts, the forwarder's UDP flows).
 */
export function poke(): void {
  current?.poke();
}
