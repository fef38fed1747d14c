#!/usr/bin/env bun
/**
 * The benchmark's client, run as its own process (inside the VM's namespace for the VM-side
 * paths) so that measuring never shares an event loop with the orchestrator. Prints one JSON line.
 *   bench-client.ts rate HOST PORT SECONDS CONCURRENCY   new connections/s, each one 64-byte echo then close
 *   bench-client.ts latency-blocks HOST PORT             connects, warms up (2,000 round trips), prints {"ready":true}; then for each line N on
 *                                                        stdin makes 20 untimed and N timed round trips and prints the N
 *                                                        times in ms; exits when stdin closes
 *   bench-client.ts idle HOST PORT N                     opens N connections (one echo each), prints, holds them until stdin closes
 */
import type { Socket } from "bun";

const [mode, host, portText, a, b] = Bun.argv.slice(2);
const port = Number(portText);
const MSG = new Uint8Array(64).fill(120);

interface Conn {
  got: number;
  want: number;
  done: (() => void) | null;
}

async function connect(): Promise<Socket<Conn>> {
  return Bun.connect<Conn>({
    hostname: host!,
    port,
    data: { got: 0, want: 0, done: null },
    socket: {
      data(s, d) {
        s.data.got += d.length;
        if (s.data.done && s.data.got >= s.data.want) {
          const f = s.data.done;
          s.data.done = null;
          f();
        }
      },
      error() {},
    },
  });
}

function echo(s: Socket<Conn>): Promise<void> {
  return new Promise((resolve) => {
    s.data.want = s.data.got + MSG.length;
    s.data.done = resolve;
    s.write(MSG);
  });
}

if (mode === "rate") {
  const seconds = Number(a);
  const conc = Number(b);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let count = 0;
  let errors = 0;
  let slowest = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (performance.now() < end) {
        const c0 = performance.now();
        try {
          const s = await connect();
          await echo(s);
          s.end();
          count++;
        } catch {
          errors++;
        }
        slowest = Math.max(slowest, performance.now() - c0);
      }
    }),
  );
  // divided by the time it really took: a connection still running at the deadline is waited for
  const elapsed = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ rate: count / elapsed, count, errors, elapsed, slowestMs: slowest }));
  process.exit(0);
} else if (mode === "latency-blocks") {
  // the orchestrator takes blocks from every path in turn, so that a noisy moment of the machine
  // falls on all of them alike
  const s = await connect();
  // warm up, alike for every path: 2,000 round trips, by which a JavaScript relay's hot path is
  // compiled (a daemon that runs for hours is measured, not its first second)
  for (let i = 0; i < 2000; i++) await echo(s);
  console.log(JSON.stringify({ ready: true }));
  let pending = "";
  for await (const chunk of Bun.stdin.stream()) {
    pending += new TextDecoder().decode(chunk);
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const n = Number(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      // the path sat idle while the others were measured: a few untimed round trips wake it up, as
      // the warm-up before one long run did
      for (let i = 0; i < 20; i++) await echo(s);
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await echo(s);
        ms.push(Math.round((performance.now() - t0) * 1000) / 1000);
      }
      console.log(JSON.stringify({ ms }));
    }
  }
  s.end();
  process.exit(0);
} else if (mode === "idle") {
  const n = Number(a);
  const held: Socket<Conn>[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => connect()));
    await Promise.all(batch.map((s) => echo(s)));
    held.push(...batch);
  }
  console.log(JSON.stringify({ open: held.length }));
  for await (const _ of Bun.stdin.stream()) {
    // hold until the orchestrator closes stdin
  }
  process.exit(0);
} else {
  console.error("usage: bench-client.ts rate|latency-blocks|idle HOST PORT ...");
  process.exit(2);
}
