/**
 * Spin before sleeping (`--spin`, off by default; Linux). On a VM whose idle vCPUs halt at once,
 * waking a process is a trip through the hypervisor, and a relay in the path pays it twice per
 * round trip (docs/performance.md). While traffic flows, a helper thread at the lowest priority
 * (SCHED_IDLE: it runs only when nothing else wants the CPU, and any woken thread preempts it)
 * keeps a vCPU busy, so the relay's wake-ups land on a running CPU. It spins for `windowMs` after
 * the last activity, then sleeps on a futex until the next. Costs CPU while traffic flows (up to
 * one core on a busy port); nothing when idle.
 */

/** The thread: lowers itself to SCHED_IDLE (reported back), then spins while pokes keep coming. */
const WORKER = `
let idle = -1;
try {
  const { dlopen, FFIType, ptr } = await import("bun:ffi");
  const libc = dlopen("libc.so.6", { sched_setscheduler: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 } }).symbols;
  idle = libc.sched_setscheduler(0, 5 /* SCHED_IDLE, this thread */, ptr(new Int32Array(1)));
} catch {}
self.onmessage = (e) => {
  const { buf, windowMs } = e.data;
  const s = new Int32Array(buf); // [0] activity counter, [1] 1 while asleep
  postMessage({ idle });
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

let state: Int32Array | null = null;
let current: Spinner | null = null;

export interface Spinner {
  /** resolves true once the thread runs at SCHED_IDLE; false (and it is gone) when it could not */
  readonly ready: Promise<boolean>;
}

/**
 * Starts the spinning thread (one per process; later calls return the first). Never spins at a
 * priority above the lowest: if SCHED_IDLE cannot be had, the thread ends and `ready` is false.
 */
export function startSpinner(windowMs: number): Spinner | null {
  if (windowMs <= 0) return null;
  if (current) return current;
  const buf = new SharedArrayBuffer(8);
  const w = new Worker(URL.createObjectURL(new Blob([WORKER], { type: "application/javascript" })));
  w.unref();
  const spinner: Spinner = {
    ready: new Promise<boolean>((resolve) => {
      w.onmessage = (e: MessageEvent<{ idle: number }>) => {
        if (e.data.idle !== 0) {
          w.terminate();
          return resolve(false);
        }
        state = new Int32Array(buf);
        resolve(true);
      };
      w.onerror = () => resolve(false);
    }),
  };
  w.postMessage({ buf, windowMs });
  current = spinner;
  return spinner;
}

/** Relay activity: keeps the spinner going, or wakes it (one futex call after it fell asleep). */
export function poke(): void {
  const s = state;
  if (!s) return;
  Atomics.add(s, 0, 1);
  if (Atomics.load(s, 1) === 1) Atomics.notify(s, 0, 1);
}
