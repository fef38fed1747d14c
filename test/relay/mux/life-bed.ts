/**
 * Real-socket parts for the channel life tables: a loopback target that behaves like an echo
 * server (answers its client's FIN with its own, unless told to hold), clients that do the same,
 * a dial policy that can hold a dial, and a raw vpnkit end (plain handshake, raw frames) on a real
 * unix socket, as Docker Desktop's vpnkit would be.
 */
import type { Socket } from "bun";
import type { DialPolicy, Verdict } from "../../../src/relay/forwarder/dial-policy.ts";
import { encodeClose, encodeShutdown, encodeWindow, type Frame, FrameDecoder } from "../../../src/relay/mux/codec.ts";
import { encodeHandshake, HandshakeReader } from "../../../src/relay/mux/handshake.ts";

export type Act = "fin" | "close" | "reset";

/** What a side does to its socket. */
export function act(s: Socket<unknown>, a: Act): void {
  if (a === "fin") s.shutdown();
  else if (a === "close") s.end();
  else s.terminate();
}

/** An echo server on 127.0.0.1 that answers FIN with FIN (unless holding); `onAccept` acts at once. */
export function targetServer() {
  const socks = new Set<Socket<unknown>>();
  const gotFin = new Set<Socket<unknown>>();
  const t = {
    socks,
    gotFin,
    hold: false,
    onAccept: null as ((s: Socket<unknown>) => void) | null,
    /** stops holding: sockets that got their client's FIN answer it now */
    release() {
      t.hold = false;
      for (const s of gotFin) if (socks.has(s)) s.end();
    },
    port: 0,
    stop: () => l.stop(true),
  };
  const l = Bun.listen<unknown>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(s) {
        socks.add(s);
        t.onAccept?.(s);
      },
      data: (s, d) => void s.write(d),
      end(s) {
        gotFin.add(s);
        if (!t.hold) s.end();
      },
      close(s) {
        socks.delete(s);
        gotFin.delete(s);
      },
      error() {},
    },
  });
  t.port = l.port;
  return t;
}

/** A client that answers FIN with FIN (unless holding) and keeps what it reads. */
export async function client(port: number) {
  const c = { closed: false, gotFin: false, text: "", hold: false, socket: null as unknown as Socket<unknown> };
  c.socket = await Bun.connect<unknown>({
    hostname: "127.0.0.1",
    port,
    allowHalfOpen: true,
    socket: {
      data: (_s, d) => void (c.text += Buffer.from(d).toString()),
      end(s) {
        c.gotFin = true;
        if (!c.hold) s.end();
      },
      close: () => void (c.closed = true),
      error() {},
    },
  });
  return Object.assign(c, {
    release() {
      c.hold = false;
      if (c.gotFin && !c.closed) c.socket.end();
    },
  });
}

/** A dial policy that allows everything, and can hold each check until `open()` (or refuse it). */
export function gatePolicy() {
  const waiting: ((v: Verdict) => void)[] = [];
  const g: { held: boolean; waiting: typeof waiting; open(v?: Verdict): void; policy: DialPolicy } = {
    held: false,
    waiting,
    open(verdict: Verdict = { ok: true }) {
      g.held = false;
      for (const w of waiting.splice(0)) w(verdict);
    },
    policy: {
      check: () => (g.held ? new Promise<Verdict>((r) => waiting.push(r)) : Promise.resolve({ ok: true } as Verdict)),
      describe: () => "the test's gate",
      allowsNothing: false,
      refresh: async () => {},
    },
  };
  return g;
}

/** One end of a pipe speaking plain vpnkit over a real socket, frame by frame, as the test says. */
export function rawVpnkit(sock: Socket<unknown>) {
  const hs = new HandshakeReader();
  const dec = new FrameDecoder();
  const r = {
    frames: [] as Frame[],
    shaken: false,
    closed: false,
    /**
     * a vpnkit end that behaves: answers a Shutdown with its own and a Close, and a Close with one;
     * like vpnkit, it drops a Shutdown or Data for a channel it has not sent its Window for (kept in `early`)
     */
    autoReply: true,
    windowSent: new Set<number>(),
    early: [] as Frame[],
    sentShutdown: new Set<number>(),
    sentClose: new Set<number>(),
    send(b: Uint8Array) {
      sock.write(b);
    },
    shutdown(id: number) {
      if (r.sentShutdown.has(id) || r.sentClose.has(id)) return;
      r.sentShutdown.add(id);
      sock.write(encodeShutdown(id));
    },
    close(id: number) {
      if (r.sentClose.has(id)) return;
      r.sentClose.add(id);
      sock.write(encodeClose(id));
    },
    window(id: number, seq = 65536) {
      r.windowSent.add(id);
      sock.write(encodeWindow(id, seq));
    },
    got: (id: number, cmd: Frame["cmd"]) => r.frames.some((f) => "id" in f && f.id === id && f.cmd === cmd),
    feed(chunk: Uint8Array) {
      let fresh: Frame[];
      if (!r.shaken) {
        const got = hs.push(chunk);
        if (!got) return;
        r.shaken = true;
        fresh = dec.push(got.rest.take(got.rest.length));
      } else fresh = dec.push(chunk);
      for (const f of fresh) {
        if ("id" in f && (f.cmd === "shutdown" || f.cmd === "data") && !r.windowSent.has(f.id)) {
          r.early.push(f);
          continue;
        }
        r.frames.push(f);
        if (!r.autoReply || !("id" in f)) continue;
        if (f.cmd === "shutdown") {
          r.shutdown(f.id);
          r.close(f.id);
        } else if (f.cmd === "close") r.close(f.id);
      }
    },
  };
  sock.write(encodeHandshake(new Uint8Array(0)));
  return Object.assign(r, {
    /** stops holding: a Shutdown that came meanwhile is answered now */
    release(id: number) {
      r.autoReply = true;
      if (r.got(id, "shutdown") && r.windowSent.has(id)) {
        r.shutdown(id);
        r.close(id);
      }
    },
  });
}
export type RawVpnkit = ReturnType<typeof rawVpnkit>;
