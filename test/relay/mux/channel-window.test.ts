/**
 * A channel's grown receive window and the session's budget, through the channel's real event
 * paths (a fake host and endpoint; time injected). What a channel holds never exceeds its window,
 * and its growth goes back to the budget exactly once, when it holds nothing more.
 */
import { describe, expect, test } from "bun:test";
import { Channel, type ChannelHost } from "../../../src/relay/mux/channel.ts";
import type { Destination } from "../../../src/relay/mux/codec.ts";
import { WindowBudget } from "../../../src/relay/mux/window.ts";
import { FakeEndpoint } from "../../helpers/memory-pipe.ts";

const dest: Destination = { proto: "tcp", ip: Uint8Array.of(127, 0, 0, 1), port: 80 };
const host: ChannelHost = {
  sendControl() {},
  schedule() {},
  release() {},
  protocolError(m) {
    throw new Error(m);
  },
};
const INIT = 1024;
const MAX = 8192;

function setup(budget: WindowBudget) {
  const clock = { t: 0 };
  const ch = new Channel(1, dest, INIT, host, { max: MAX, budget, now: () => clock.t });
  const ep = new FakeEndpoint();
  ch.attach(ep);
  return { ch, ep, clock };
}

/** the peer sends every byte it may and the destination takes it at once: the window grows */
function grow(ch: Channel, clock: { t: number }): void {
  for (let i = 0; i < 10 && ch.recv.size < MAX; i++) {
    ch.peerData(new Uint8Array(ch.recv.advertised - ch.recv.received));
    clock.t += 1;
  }
}

describe("a grown window and the session's budget", () => {
  test("a fast channel grows to max, taking from the budget; a clean end gives all of it back", () => {
    const budget = new WindowBudget(100_000);
    const { ch, clock } = setup(budget);
    grow(ch, clock);
    expect(ch.recv.size).toBe(MAX);
    expect(budget.available).toBe(100_000 - (MAX - INIT));
    ch.peerShutdown();
    ch.localEnd();
    ch.peerClose();
    expect(ch.released).toBe(true);
    expect(budget.available).toBe(100_000);
  });

  test("the peer closes while the socket is full: no growth after the close, the budget comes back once the bytes are written", () => {
    const budget = new WindowBudget(100_000);
    const { ch, ep } = setup(budget);
    ep.accept = 0; // the destination is momentarily full
    ch.peerData(new Uint8Array(INIT)); // the peer used all its credit
    ch.peerShutdown();
    ch.peerClose();
    ep.accept = Infinity;
    ch.localDrain(); // written at once: would have counted as a fast half window
    expect(ep.bytes).toBe(INIT);
    expect(ch.recv.size).toBe(INIT);
    expect(budget.available).toBe(100_000);
  });

  test("a local reset on a grown channel: the peer's bytes in flight are credited back without growing anything", () => {
    const budget = new WindowBudget(100_000);
    const { ch, ep, clock } = setup(budget);
    grow(ch, clock);
    const limit = ch.recv.advertised;
    ep.accept = 0;
    ch.peerData(new Uint8Array(300));
    ch.localClosed("ECONNRESET");
    expect(budget.available).toBe(100_000);
    ch.peerData(new Uint8Array(limit - ch.recv.received)); // in flight, exactly up to the peer's credit
    expect(budget.available).toBe(100_000);
    expect(ch.recv.size).toBe(INIT);
  });

  test("grown channels that the peer closes while their destinations stall hold at most first windows + budget", () => {
    const BUDGET = 3 * (MAX - INIT);
    const budget = new WindowBudget(BUDGET);
    const N = 10;
    let held = 0;
    for (let i = 0; i < N; i++) {
      const { ch, ep, clock } = setup(budget);
      grow(ch, clock);
      ep.accept = 0; // the destination stalls
      ch.peerData(new Uint8Array(ch.recv.advertised - ch.recv.received));
      ch.peerShutdown();
      ch.peerClose(); // the bytes are still waiting for the socket: the growth is still held
      held += ch.recv.buffered;
    }
    expect(held).toBeLessThanOrEqual(N * INIT + BUDGET);
    expect(budget.available).toBe(0);
  });

  test.each([
    ["the channel is aborted (pipe lost)", (ch: Channel) => ch.abort("pipe lost")],
    ["the local socket closes with an error", (ch: Channel) => ch.localClosed("EPIPE")],
  ] as const)("%s while bytes wait for the socket: they are dropped and the growth comes back", (_what, end) => {
    const budget = new WindowBudget(100_000);
    const { ch, ep, clock } = setup(budget);
    grow(ch, clock);
    ep.accept = 0;
    ch.peerData(new Uint8Array(ch.recv.advertised - ch.recv.received));
    expect(ch.recv.buffered).toBeGreaterThan(INIT);
    end(ch);
    expect(budget.available).toBe(100_000);
    expect(ch.bufferedBytes).toBe(0);
  });
});
