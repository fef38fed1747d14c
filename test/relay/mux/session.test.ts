import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { Channel } from "../../../src/relay/mux/channel.ts";
import type { CloseReason } from "../../../src/relay/mux/close-reason.ts";
import {
  type Destination,
  encodeClose,
  encodeData,
  encodeShutdown,
  encodeWindow,
  type Frame,
  FrameDecoder,
} from "../../../src/relay/mux/codec.ts";
import { OPEN_FORBIDDEN, VPNKIT_WINDOW } from "../../../src/relay/mux/constants.ts";
import { encodeHandshake, HandshakeReader } from "../../../src/relay/mux/handshake.ts";
import { Session, type SessionOptions } from "../../../src/relay/mux/session.ts";
import { FakeEndpoint, type MemEnd, pipePair, until } from "../../helpers/memory-pipe.ts";

const dest: Destination = { proto: "tcp", ip: Uint8Array.of(172, 17, 0, 2), port: 80 };
const sessions: Session[] = [];
afterEach(() => {
  for (const s of sessions.splice(0)) s.close();
});

function pair(host: Partial<SessionOptions> = {}, vm: Partial<SessionOptions> = {}, capacity?: number) {
  const [a, b] = pipePair(capacity);
  const vmEndpoints: { ch: Channel; ep: FakeEndpoint }[] = [];
  const closed: Record<string, CloseReason> = {};
  const h = new Session({ role: "host", onClosed: (_s, e) => (closed.host = e), ...host });
  const v = new Session({
    role: "vm",
    onOpen: (ch) => {
      const ep = new FakeEndpoint();
      vmEndpoints.push({ ch, ep });
      v.accept(ch, ep);
    },
    onClosed: (_s, e) => (closed.vm = e),
    ...vm,
  });
  sessions.push(h, v);
  a.handlers = h.handlers;
  b.handlers = v.handlers;
  h.start(a);
  v.start(b);
  return { h, v, a, b, vmEndpoints, closed };
}

/** A raw peer that speaks vpnkit with an empty handshake payload, as Docker Desktop's forwarder does. */
function vpnkitPeer(end: MemEnd) {
  const hs = new HandshakeReader();
  const dec = new FrameDecoder();
  const frames: Frame[] = [];
  let shaken = false;
  end.handlers = {
    data(chunk) {
      if (!shaken) {
        const got = hs.push(chunk);
        if (!got) return;
        shaken = true;
        frames.push(...dec.push(got.rest.take(got.rest.length)));
      } else frames.push(...dec.push(chunk));
    },
    drain() {},
    closed() {},
  };
  end.write(encodeHandshake(new Uint8Array(0)));
  return { frames, send: (b: Uint8Array) => end.write(b) };
}

const sha = (chunks: Uint8Array[]) => createHash("sha256").update(Buffer.concat(chunks)).digest("hex");
function randomBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}
/** Feeds data into a channel in socket-sized chunks, honouring pause like a socket would. */
async function pour(ch: Channel, ep: FakeEndpoint, data: Uint8Array, chunk = 64 * 1024) {
  for (let off = 0; off < data.length; off += chunk) {
    await until(() => !ep.paused, "endpoint resumed", 10_000);
    ch.localData(data.subarray(off, off + chunk));
  }
}

describe("handshake", () => {
  test("two edgeport ends negotiate every extension and their windows", async () => {
    const { h, v } = pair({ pipe: { window: 512 * 1024 } }, { pipe: { window: 2 * 1024 * 1024 } });
    await until(() => h.state === "ready" && v.state === "ready", "both ready");
    expect([...h.negotiated!.ext].sort()).toEqual(["auth", "listeners", "open-result", "ping"]);
    expect(h.negotiated!.recvWindow).toBe(512 * 1024);
    expect(v.negotiated!.recvWindow).toBe(2 * 1024 * 1024);
  });

  test("a plain vpnkit peer gets 64 KiB windows and only vpnkit frames", async () => {
    const [a, b] = pipePair();
    const h = new Session({ role: "host", pipe: { keepaliveMs: 20, deadAfterMs: 60_000 } });
    sessions.push(h);
    a.handlers = h.handlers;
    const peer = vpnkitPeer(b);
    h.start(a);
    await until(() => h.state === "ready", "host ready");
    expect(h.negotiated).toEqual({
      edgeportPeer: false,
      ext: new Set(),
      recvWindow: VPNKIT_WINDOW,
      recvWindowMax: VPNKIT_WINDOW,
    });
    const ep = new FakeEndpoint();
    const ch = h.open(dest, ep);
    await until(() => peer.frames.length >= 2, "open and window");
    expect(peer.frames.slice(0, 2)).toEqual([
      { cmd: "open", id: ch.id, connType: 2, dest },
      { cmd: "window", id: ch.id, seq: VPNKIT_WINDOW },
    ]);
    // the peer accepts, then answers with data, shutdown and close
    peer.send(encodeWindow(ch.id, VPNKIT_WINDOW));
    ch.localData(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
    ch.localEnd();
    peer.send(encodeData(ch.id, new TextEncoder().encode("HTTP/1.0 200 OK\r\n\r\nhello")));
    peer.send(encodeShutdown(ch.id));
    await until(() => ep.shutdownCalled, "client sees FIN");
    expect(ep.text()).toBe("HTTP/1.0 200 OK\r\n\r\nhello");
    peer.send(encodeClose(ch.id));
    await until(() => h.channels.size === 0, "channel freed");
    await Bun.sleep(100); // several keepalive intervals: a vpnkit peer must get no ping
    expect(peer.frames.every((f) => ["open", "window", "data", "shutdown", "close"].includes(f.cmd))).toBe(true);
    expect(peer.frames.map((f) => f.cmd)).toEqual(["open", "window", "data", "shutdown", "close"]);
    expect(Buffer.from((peer.frames[2] as { payload: Uint8Array }).payload).toString()).toBe("GET / HTTP/1.0\r\n\r\n");
    expect(ep.resetCalled).toBe(false);
    expect(h.state).toBe("ready");
  });

  test("a peer with the wrong magic is closed", async () => {
    const [a, b] = pipePair();
    let err: CloseReason | null = null;
    const h = new Session({ role: "host", onClosed: (_s, e) => (err = e) });
    sessions.push(h);
    a.handlers = h.handlers;
    b.handlers = { data() {}, drain() {}, closed() {} };
    h.start(a);
    b.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n".padEnd(60)));
    await until(() => h.state === "closed", "closed");
    expect(err as CloseReason | null).toMatchObject({
      kind: "protocol",
      detail: expect.stringContaining("wrong handshake magic"),
    });
  });
});

describe("data, half-close and abort", () => {
  test("8 MiB each way with equal checksums, then half-close both ways", async () => {
    const { h, vmEndpoints } = pair({ pipe: { window: 256 * 1024 } }, { pipe: { window: 256 * 1024 } }, 128 * 1024);
    await until(() => h.state === "ready", "ready");
    const hostEp = new FakeEndpoint();
    const ch = h.open(dest, hostEp);
    await until(() => vmEndpoints.length === 1, "vm accepted");
    const { ch: vch, ep: vmEp } = vmEndpoints[0]!;
    const up = randomBytes(8 << 20, 1);
    const down = randomBytes(8 << 20, 2);
    await Promise.all([pour(ch, hostEp, up), pour(vch, vmEp, down)]);
    await until(() => vmEp.bytes === up.length && hostEp.bytes === down.length, "all bytes", 20_000);
    expect(sha(vmEp.chunks)).toBe(sha([up]));
    expect(sha(hostEp.chunks)).toBe(sha([down]));
    // client half-closes; the server still answers after EOF
    ch.localEnd();
    await until(() => vmEp.shutdownCalled, "server sees FIN");
    vch.localData(new TextEncoder().encode("answer after EOF"));
    vch.localEnd();
    await until(() => hostEp.shutdownCalled, "client sees FIN");
    expect(Buffer.concat(hostEp.chunks).subarray(down.length).toString()).toBe("answer after EOF");
    await until(() => h.channels.size === 0, "ids freed");
    expect(hostEp.closeCalled && vmEp.closeCalled).toBe(true);
    expect(hostEp.resetCalled || vmEp.resetCalled).toBe(false);
  });

  test("an aborted client resets the server side, and the reverse", async () => {
    const { h, v, vmEndpoints } = pair();
    await until(() => h.state === "ready", "ready");
    const ep1 = new FakeEndpoint();
    const ch1 = h.open(dest, ep1);
    await until(() => vmEndpoints.length === 1, "accepted");
    ch1.localClosed("ECONNRESET");
    await until(() => vmEndpoints[0]!.ep.resetCalled, "server reset");
    const ep2 = new FakeEndpoint();
    h.open(dest, ep2);
    await until(() => vmEndpoints.length === 2, "accepted 2");
    vmEndpoints[1]!.ch.localClosed("ECONNRESET");
    await until(() => ep2.resetCalled, "client reset");
    await until(() => h.channels.size === 0 && v.channels.size === 0, "all freed");
  });

  test("a refused open reaches the host with its reason (open-result)", async () => {
    let reason: string | null = null;
    const { h } = pair({}, { onOpen: (ch) => v2.reject(ch, OPEN_FORBIDDEN, "172.17.0.2 is not in the allowlist") });
    const v2 = sessions[1]!;
    await until(() => h.state === "ready", "ready");
    const ep = new FakeEndpoint();
    const ch = h.open(dest, ep);
    ch.onEnded = (r) => (reason = r);
    await until(() => ep.resetCalled, "client reset");
    expect(reason as unknown as string).toBe("forbidden: 172.17.0.2 is not in the allowlist");
  });
});

describe("flow control", () => {
  test("one stalled reader does not stall another channel, and its buffer stays within the window", async () => {
    const win = 128 * 1024;
    const { h, vmEndpoints } = pair({ pipe: { window: win } }, { pipe: { window: win } });
    await until(() => h.state === "ready", "ready");
    const slowEp = new FakeEndpoint();
    slowEp.accept = 0; // the client never reads
    const slow = h.open(dest, slowEp);
    const fastEp = new FakeEndpoint();
    const fast = h.open(dest, fastEp);
    await until(() => vmEndpoints.length === 2, "accepted");
    const [s, f] = vmEndpoints;
    const big = randomBytes(4 << 20, 3);
    // the server of the stalled channel writes until the channel pushes back
    let sent = 0;
    const slowPour = (async () => {
      while (sent < big.length) {
        await until(() => !s!.ep.paused, "slow resumed", 60_000).catch(() => undefined);
        if (s!.ep.paused) return;
        s!.ch.localData(big.subarray(sent, sent + 65536));
        sent += 65536;
      }
    })();
    await pour(f!.ch, f!.ep, big);
    await until(() => fastEp.bytes === big.length, "fast channel complete", 20_000);
    expect(sha(fastEp.chunks)).toBe(sha([big]));
    expect(slowEp.bytes).toBe(0);
    expect(slow.recv.buffered).toBeLessThanOrEqual(win);
    // the fast channel's window grew (its reader kept up, the sender waited for credit); the
    // stalled one's did not, so what it holds is still bounded by the window it started with
    expect(fast.recv.size).toBeGreaterThan(win);
    expect(slow.recv.size).toBe(win);
    expect(s!.ep.paused).toBe(true); // backpressure reached the server's socket
    expect(s!.ch.bufferedBytes).toBeLessThan(600 * 1024);
    // the stalled reader wakes up and gets everything, in order
    slowEp.accept = Infinity;
    slow.localDrain();
    await slowPour;
    await until(() => slowEp.bytes === sent, "stalled channel catches up", 20_000);
    expect(sha(slowEp.chunks)).toBe(sha([big.subarray(0, sent)]));
  });

  test("--window-max equal to --window: a fast channel's window stays as it is", async () => {
    const win = 64 * 1024;
    const { h, vmEndpoints } = pair(
      { pipe: { window: win, windowMax: win } },
      { pipe: { window: win, windowMax: win } },
    );
    await until(() => h.state === "ready", "ready");
    const ep = new FakeEndpoint();
    const ch = h.open(dest, ep);
    await until(() => vmEndpoints.length === 1, "accepted");
    const big = randomBytes(2 << 20, 5);
    await pour(vmEndpoints[0]!.ch, vmEndpoints[0]!.ep, big);
    await until(() => ep.bytes === big.length, "complete", 20_000);
    expect(sha(ep.chunks)).toBe(sha([big]));
    expect(ch.recv.size).toBe(win);
    expect(ch.recv.advertised - ch.recv.consumed).toBeLessThanOrEqual(win);
  });

  test("a peer that sends past its credit closes the pipe with a line naming it", async () => {
    const [a, b] = pipePair();
    let err: CloseReason | null = null;
    const h = new Session({ role: "host", onClosed: (_s, e) => (err = e) });
    sessions.push(h);
    a.handlers = h.handlers;
    const peer = vpnkitPeer(b);
    h.start(a);
    await until(() => h.state === "ready", "ready");
    const ch = h.open(dest, Object.assign(new FakeEndpoint(), { accept: 0 }));
    peer.send(encodeWindow(ch.id, VPNKIT_WINDOW));
    peer.send(encodeData(ch.id, new Uint8Array(VPNKIT_WINDOW)));
    peer.send(encodeData(ch.id, new Uint8Array(1)));
    await until(() => h.state === "closed", "closed");
    expect(err as CloseReason | null).toEqual({
      kind: "protocol",
      detail: `channel ${ch.id}: peer sent 1 bytes past its credit (received ${VPNKIT_WINDOW}, allowed up to ${VPNKIT_WINDOW})`,
    });
  });

  test("late frames for a freed id are tolerated", async () => {
    const [a, b] = pipePair();
    const h = new Session({ role: "host" });
    sessions.push(h);
    a.handlers = h.handlers;
    const peer = vpnkitPeer(b);
    h.start(a);
    await until(() => h.state === "ready", "ready");
    const ep = new FakeEndpoint();
    const ch = h.open(dest, ep);
    peer.send(encodeWindow(ch.id, VPNKIT_WINDOW));
    peer.send(encodeClose(ch.id));
    await until(() => ep.resetCalled && h.channels.size === 0, "freed");
    for (const f of [
      encodeData(ch.id, new Uint8Array(10)),
      encodeWindow(ch.id, 1 << 20),
      encodeShutdown(ch.id),
      encodeClose(ch.id),
      encodeClose(4242),
    ])
      peer.send(f);
    const ep2 = new FakeEndpoint();
    const ch2 = h.open(dest, ep2);
    peer.send(encodeWindow(ch2.id, VPNKIT_WINDOW));
    peer.send(encodeData(ch2.id, new TextEncoder().encode("still alive")));
    await until(() => ep2.text() === "still alive", "second channel works");
    expect(h.state).toBe("ready");
  });

  /** A ready host session whose writes are never read from now on (`closed.error` once it fails). */
  async function hostThatNobodyReads(ext: string[]) {
    const [a, b] = pipePair(64 * 1024);
    const closed: { error: CloseReason | null } = { error: null };
    const h = new Session({ role: "host", onClosed: (_s, e) => (closed.error = e) });
    sessions.push(h);
    a.handlers = h.handlers;
    b.handlers = { data() {}, drain() {}, closed() {} };
    h.start(a);
    const { encodeHello } = await import("../../../src/relay/mux/handshake.ts");
    b.write(encodeHello({ edgeport: 1, role: "vm", window: 65536, ext, auth: false, nonce: "0".repeat(32) }));
    await until(() => h.state === "ready", "ready");
    a.blackhole = true; // whatever the host writes now is never read
    return { h, peer: b, closed };
  }

  test("a control-frame flood while the peer does not read is cut off, not queued without bound", async () => {
    const { h, peer, closed } = await hostThatNobodyReads(["ping"]);
    const { encodePing } = await import("../../../src/relay/mux/codec.ts");
    const pings = Buffer.concat(Array.from({ length: 4096 }, (_, i) => encodePing(i)));
    for (let i = 0; i < 80 && h.state !== "closed"; i++) {
      peer.write(pings);
      await Bun.sleep(1);
    }
    await until(() => h.state === "closed", "cut off");
    expect(closed.error).toMatchObject({
      kind: "protocol",
      detail: expect.stringContaining("control frames queued while the peer does not read"),
    });
  });

  test("an Open that overflows the control backlog: the pipe is cut off and that connection is reset too", async () => {
    const { h, closed } = await hostThatNobodyReads([]);
    const eps: FakeEndpoint[] = [];
    while (h.state === "ready" && eps.length < 1_000_000) {
      const ep = new FakeEndpoint();
      eps.push(ep);
      h.open(dest, ep);
    }
    expect(closed.error).toMatchObject({
      kind: "protocol",
      detail: expect.stringContaining("control frames queued while the peer does not read"),
    });
    // every local socket is reset, the last one (whose Open failed the pipe) included
    expect(eps.filter((e) => !e.resetCalled).length).toBe(0);
  });
});

describe("authentication and keepalive", () => {
  const secret = new TextEncoder().encode("s3cret");
  test("the same secret on both ends: ready", async () => {
    const { h, v } = pair({ pipe: { secret } }, { pipe: { secret } });
    await until(() => h.state === "ready" && v.state === "ready", "ready");
  });
  test("different secrets: both ends refuse", async () => {
    const { h, v, closed } = pair({ pipe: { secret } }, { pipe: { secret: new TextEncoder().encode("other") } });
    await until(() => h.state === "closed" && v.state === "closed", "closed");
    expect(closed.vm).toEqual({ kind: "auth", detail: "the pipe secrets differ" });
    expect(["auth", "peer-closed", "pipe-error"]).toContain(closed.host!.kind);
  });
  test("a secret on one end only: refused with a hint", async () => {
    const { h, v, closed } = pair({}, { pipe: { secret } });
    await until(() => h.state === "closed" && v.state === "closed", "closed");
    expect(closed.vm).toMatchObject({ kind: "auth", detail: expect.stringContaining("the peer has no pipe secret") });
    expect(closed.host).toMatchObject({
      kind: "auth",
      detail: expect.stringContaining("the peer requires a pipe secret"),
    });
  });
  test("no Open is honoured before the secret matched", async () => {
    const [a, b] = pipePair();
    const opened: number[] = [];
    let err: CloseReason | null = null;
    const v = new Session({
      role: "vm",
      pipe: { secret },
      onOpen: (ch) => opened.push(ch.id),
      onClosed: (_s, e) => (err = e),
    });
    sessions.push(v);
    b.handlers = v.handlers;
    a.handlers = { data() {}, drain() {}, closed() {} };
    v.start(b);
    const { encodeHello } = await import("../../../src/relay/mux/handshake.ts");
    const { encodeOpen } = await import("../../../src/relay/mux/codec.ts");
    a.write(
      encodeHello({ edgeport: 1, role: "host", window: 65536, ext: ["auth"], auth: true, nonce: "1".repeat(32) }),
    );
    a.write(encodeOpen(0, dest));
    await until(() => v.state === "closed", "closed");
    expect(opened).toEqual([]);
    expect(err as CloseReason | null).toEqual({
      kind: "auth",
      detail: "the peer sent open before proving the pipe secret",
    });
  });
  test("a blackholed pipe is declared dead within the bound", async () => {
    const { h, a, b, closed } = pair(
      { pipe: { keepaliveMs: 50, deadAfterMs: 200 } },
      { pipe: { keepaliveMs: 50, deadAfterMs: 200 } },
    );
    await until(() => h.state === "ready", "ready");
    // pings keep an idle pipe alive
    await Bun.sleep(400);
    expect(h.state).toBe("ready");
    a.blackhole = true;
    b.blackhole = true;
    const t0 = Date.now();
    await until(() => h.state === "closed", "declared dead", 2000);
    expect(Date.now() - t0).toBeLessThan(400);
    expect(closed.host).toMatchObject({ kind: "dead", detail: expect.stringContaining("keepalive") });
  });
});

describe("memory held by received pieces", () => {
  const host = {
    sendControl() {},
    schedule() {},
    release() {},
    protocolError(m: string) {
      throw new Error(m);
    },
    closeFrame: () => new Uint8Array(0),
    shutdownFrame: () => new Uint8Array(0),
    windowFrame: () => new Uint8Array(0),
  };

  test("a small piece of a big received chunk is copied before it waits; a large one stays a view", () => {
    const written: Uint8Array[] = [];
    let accept = false;
    const ep = {
      write: (d: Uint8Array) => {
        if (!accept) return 0;
        written.push(d);
        return d.length;
      },
      shutdown() {},
      close() {},
      reset() {},
      pause() {},
      resume() {},
    };
    const ch = new Channel(1, { proto: "tcp", ip: Uint8Array.of(127, 0, 0, 1), port: 1 }, 1024 * 1024, host);
    ch.attach(ep);
    const chunk = new Uint8Array(512 * 1024).fill(7);
    ch.peerData(chunk.subarray(100, 110)); // 10 bytes holding 512 KiB
    ch.peerData(chunk.subarray(0, 256 * 1024)); // half the chunk: worth keeping as a view
    accept = true;
    ch.localDrain();
    expect(written.map((w) => w.length)).toEqual([10, 256 * 1024]);
    expect(written[0]!.buffer).not.toBe(chunk.buffer);
    expect(written[0]!.buffer.byteLength).toBe(10);
    expect(written[1]!.buffer).toBe(chunk.buffer);
  });
});
