#!/usr/bin/env bun
/**
 * The socket-forward benchmark's client, its own process: `stream-client.ts up|down TARGET BYTES`,
 * TARGET `unix:PATH` or `HOST:PORT` (a stream-peer.ts sink for up, its source for down). Sends (or
 * asks for and reads) BYTES, and prints {"gbps": N} timed from the connect to the peer's FIN.
 */
const [mode, target, bytesText] = Bun.argv.slice(2);
const total = Number(bytesText);
const to = target!.startsWith("unix:")
  ? { unix: target!.slice(5) }
  : { hostname: target!.slice(0, target!.lastIndexOf(":")), port: Number(target!.slice(target!.lastIndexOf(":") + 1)) };
const BLOCK = new Uint8Array(256 * 1024).fill(98);
const t0 = performance.now();
let got = 0;
let left = mode === "up" ? total : 0;
const { promise: done, resolve } = Promise.withResolvers<void>();
const pump = (s: { write(d: Uint8Array): number; shutdown(): void }) => {
  while (left > 0) {
    const n = s.write(BLOCK.subarray(0, Math.min(BLOCK.length, left)));
    if (n <= 0) return;
    left -= n;
  }
  s.shutdown();
};
const sock = await Bun.connect({
  ...(to as { unix: string }),
  allowHalfOpen: true,
  socket: {
    open(s) {
      if (mode === "up") pump(s);
      else s.write(`${total}\n`);
    },
    data(_s, d) {
      got += d.length;
    },
    drain(s) {
      if (mode === "up" && left > 0) pump(s);
    },
    end: () => resolve(),
    close: () => resolve(),
    error() {},
  },
});
await done;
const secs = (performance.now() - t0) / 1000;
if (mode === "down" && got !== total) throw new Error(`got ${got} of ${total} bytes`);
console.log(JSON.stringify({ gbps: (total * 8) / secs / 1e9 }));
sock.end(); // the peer already ended: close our side too, or the half-open socket keeps the process alive
process.exit(0);
