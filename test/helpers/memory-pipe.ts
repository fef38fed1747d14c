/** In-memory pipe pairs and endpoints for unit tests of the mux (fakes for pure-ish code only). */
import type { Endpoint } from "../../src/relay/mux/channel.ts";
import type { Pipe, PipeHandlers } from "../../src/relay/mux/pipe.ts";

export interface MemEnd extends Pipe {
  handlers: PipeHandlers | null;
  /** stop delivering what this end writes (a blackholed link) */
  blackhole: boolean;
  written: number;
}

/** Two connected pipe ends; each accepts at most `capacity` bytes in flight (backpressure). */
export function pipePair(capacity = 256 * 1024): [MemEnd, MemEnd] {
  type Inner = MemEnd & { peer?: Inner; inflight: number; wantDrain: boolean; closedFlag: boolean };
  const mk = (name: string): Inner => ({
    description: name,
    handlers: null,
    blackhole: false,
    written: 0,
    inflight: 0,
    wantDrain: false,
    closedFlag: false,
    write(data: Uint8Array) {
      if (this.closedFlag) return -1;
      const n = Math.min(data.length, capacity - this.inflight);
      if (n < data.length) this.wantDrain = true;
      if (n <= 0) return 0;
      const copy = data.slice(0, n);
      this.inflight += n;
      this.written += n;
      if (this.blackhole) return n; // swallowed, never drained
      setImmediate(() => {
        const peer = this.peer!;
        if (!peer.closedFlag) peer.handlers?.data(copy);
        this.inflight -= n;
        if (this.wantDrain && !this.closedFlag) {
          this.wantDrain = false;
          this.handlers?.drain();
        }
      });
      return n;
    },
    close() {
      if (this.closedFlag) return;
      this.closedFlag = true;
      if (this.blackhole) return; // nothing, not even the FIN, gets through
      const peer = this.peer!;
      setImmediate(() => {
        if (!peer.closedFlag) {
          peer.closedFlag = true;
          peer.handlers?.closed("peer closed");
        }
      });
    },
  });
  const a = mk("mem-a");
  const b = mk("mem-b");
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A fake local socket: collects bytes, can stall like a slow reader. */
export class FakeEndpoint implements Endpoint {
  chunks: Uint8Array[] = [];
  bytes = 0;
  shutdownCalled = false;
  closeCalled = false;
  resetCalled = false;
  paused = false;
  /** bytes it accepts per write; 0 stalls it */
  accept = Infinity;
  onWrite: ((chunk: Uint8Array) => void) | null = null;

  write(data: Uint8Array): number {
    if (this.closeCalled || this.resetCalled) return -1;
    const n = Math.min(data.length, this.accept);
    if (n > 0) {
      const c = data.slice(0, n);
      this.chunks.push(c);
      this.bytes += n;
      this.onWrite?.(c);
    }
    return n;
  }
  shutdown() {
    this.shutdownCalled = true;
  }
  close() {
    this.closeCalled = true;
  }
  reset() {
    this.resetCalled = true;
  }
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

export { until } from "./until.ts";
