#!/usr/bin/env bun
/**
 * The benchmark's ceiling for edgeport's design: two Bun processes, ONE unix pipe, the simplest
 * framing that still carries many connections (iperf3 needs its control connection beside the
 * data one) with half-close: no windows, no credit, no per-channel queues beyond what a partial
 * write leaves, no handshake. Backpressure goes one way only: while the pipe does not take a
 * write, every connection whose own writes are not waiting is paused until the pipe drains. The
 * pipe itself is never paused (pausing it deadlocked an earlier version: a paused Bun socket was
 * not seen to report drain): what a destination does not take at once waits in memory, which the
 * benchmark's fast readers (iperf3, echo) keep small. Not a product: it shows how far edgeport is
 * from what Bun can do with this design.
 *
 *   bun scripts/bench/bare-pair.ts vm PIPE_PATH
 *   bun scripts/bench/bare-pair.ts host PIPE_PATH HOST_PORT:TARGET_IP:TARGET_PORT ...
 *
 * Frame: type (u8) | id (u32 BE) | length (u32 BE) | payload. Types: OPEN (payload "ip:port"),
 * DATA, FIN (half-close), CLOSE.
 */
import type { Socket } from "bun";
import { growSocketBuffers, PIPE_SOCKET_BUFFER } from "../../src/relay/transports/sockbuf.ts";

/** the pipe gets the same 4 MiB kernel buffers edgeport asks for */
const tune = (s: Socket<unknown>) => growSocketBuffers((s as unknown as { fd?: number }).fd, PIPE_SOCKET_BUFFER);

const OPEN = 0;
const DATA = 1;
const FIN = 2;
const CLOSE = 3;
const HEADER = 9;

function header(type: number, id: number, len: number): Uint8Array {
  const h = new Uint8Array(HEADER);
  const v = new DataView(h.buffer);
  v.setUint8(0, type);
  v.setUint32(1, id);
  v.setUint32(5, len);
  return h;
}

/** Writes in order; what the socket does not take waits for drain. Returns false while backed up. */
class Writer {
  private queue: Uint8Array[] = [];
  onIdle: () => void = () => {};
  constructor(private readonly sock: Socket<unknown>) {}
  get busy(): boolean {
    return this.queue.length > 0;
  }
  write(b: Uint8Array): boolean {
    if (this.queue.length) {
      this.queue.push(b);
      return false;
    }
    const n = this.sock.write(b);
    if (n < b.length) this.queue.push(b.subarray(Math.max(n, 0)));
    return this.queue.length === 0;
  }
  drain(): void {
    while (this.queue.length) {
      const b = this.queue[0]!;
      const n = this.sock.write(b);
      if (n < b.length) {
        this.queue[0] = b.subarray(Math.max(n, 0));
        return;
      }
      this.queue.shift();
    }
    this.onIdle();
  }
}

/**
 * Splits the pipe's byte stream into frames without reassembling them: a DATA payload is handed out
 * in pieces, views of the chunks as they arrive (as edgeport's decoder does); other payloads are small
 * and handed out whole.
 */
function deframer(onFrame: (type: number, id: number, payload: Uint8Array) => void) {
  const head = new Uint8Array(HEADER);
  const view = new DataView(head.buffer);
  let have = 0;
  let type = 0;
  let id = 0;
  let left = 0;
  let small: Uint8Array[] = [];
  return (chunk: Uint8Array) => {
    let off = 0;
    while (off < chunk.length) {
      if (have < HEADER) {
        const n = Math.min(HEADER - have, chunk.length - off);
        head.set(chunk.subarray(off, off + n), have);
        have += n;
        off += n;
        if (have < HEADER) return;
        type = view.getUint8(0);
        id = view.getUint32(1);
        left = view.getUint32(5);
        if (left === 0) {
          onFrame(type, id, new Uint8Array(0));
          have = 0;
        }
        continue;
      }
      const n = Math.min(left, chunk.length - off);
      const piece = chunk.subarray(off, off + n);
      off += n;
      left -= n;
      if (type === DATA) onFrame(DATA, id, piece);
      else small.push(piece);
      if (left === 0) {
        if (type !== DATA) onFrame(type, id, Buffer.concat(small));
        small = [];
        have = 0;
      }
    }
  };
}

/**
 * Stops reading from every connection whose own writes are not waiting: a paused Bun socket was
 * seen here never to report drain, so pausing one with queued writes can deadlock the pair.
 */
function pauseReaders(conns: Map<number, Conn>): void {
  for (const o of conns.values()) if (!o.w?.busy) o.sock?.pause();
}

interface Conn {
  sock: Socket<Conn> | null;
  id: number;
  w: Writer | null;
  /** bytes for a destination still connecting */
  early: Uint8Array[];
  finPending: boolean;
  /** a CLOSE came while the destination was still connecting: end it once it opens */
  closePending?: boolean;
}

function vm(path: string): void {
  const conns = new Map<number, Conn>();
  let pipeW: Writer;
  const send = (type: number, id: number, payload?: Uint8Array) => {
    pipeW.write(header(type, id, payload?.length ?? 0));
    if (payload?.length) pipeW.write(payload);
  };
  const onFrame = (type: number, id: number, payload: Uint8Array) => {
    if (type === OPEN) {
      const [ip, port] = new TextDecoder().decode(payload).split(":");
      const c: Conn = { sock: null, id, w: null, early: [], finPending: false };
      conns.set(id, c);
      Bun.connect<Conn>({
        hostname: ip!,
        port: Number(port),
        allowHalfOpen: true,
        data: c,
        socket: {
          open(s) {
            if (c.closePending) {
              s.end();
              return;
            }
            c.sock = s;
            c.w = new Writer(s as Socket<unknown>);
            for (const b of c.early) c.w.write(Buffer.from(b));
            c.early = [];
            if (c.finPending) s.shutdown();
          },
          data(_s, d) {
            send(DATA, id, d);
            if (pipeW.busy) pauseReaders(conns);
          },
          drain: () => c.w?.drain(),
          end: () => send(FIN, id),
          close() {
            if (conns.delete(id)) send(CLOSE, id);
          },
        },
      }).catch(() => {
        if (conns.delete(id)) send(CLOSE, id);
      });
    } else if (type === DATA) {
      const c = conns.get(id);
      if (!c) return;
      if (!c.w) c.early.push(Buffer.from(payload));
      else c.w.write(payload);
    } else if (type === FIN) {
      const c = conns.get(id);
      if (c?.sock) c.sock.shutdown();
      else if (c) c.finPending = true;
    } else if (type === CLOSE) {
      const c = conns.get(id);
      conns.delete(id);
      if (c && !c.sock) c.closePending = true;
      c?.sock?.end();
    }
  };
  const feed = deframer(onFrame);
  Bun.listen<undefined>({
    unix: path,
    socket: {
      open(s) {
        tune(s as Socket<unknown>);
        pipeW = new Writer(s as Socket<unknown>);
        pipeW.onIdle = () => {
          for (const c of conns.values()) c.sock?.resume();
        };
      },
      data: (_s, d) => feed(d),
      drain: () => pipeW.drain(),
    },
  });
  console.log(`bare pair vm: listening on ${path}`);
}

async function host(path: string, specs: string[]): Promise<void> {
  const conns = new Map<number, Conn>();
  let nextId = 1;
  let pipeW: Writer;
  const send = (type: number, id: number, payload?: Uint8Array) => {
    pipeW.write(header(type, id, payload?.length ?? 0));
    if (payload?.length) pipeW.write(payload);
  };
  const feed = deframer((type, id, payload) => {
    const c = conns.get(id);
    if (!c?.sock) return;
    if (type === DATA) c.w!.write(payload);
    else if (type === FIN) c.sock.shutdown();
    else if (type === CLOSE) {
      conns.delete(id);
      c.sock.end();
    }
  });
  const pipe = await Bun.connect<undefined>({
    unix: path,
    socket: {
      data: (_s, d) => feed(d),
      drain: () => pipeW.drain(),
    },
  });
  tune(pipe as Socket<unknown>);
  pipeW = new Writer(pipe as Socket<unknown>);
  pipeW.onIdle = () => {
    for (const c of conns.values()) c.sock?.resume();
  };
  for (const spec of specs) {
    const [port, ip, tport] = spec.split(":");
    const target = new TextEncoder().encode(`${ip}:${tport}`);
    Bun.listen<Conn>({
      hostname: "127.0.0.1",
      port: Number(port),
      allowHalfOpen: true,
      socket: {
        open(s) {
          const c: Conn = { sock: s, id: nextId++, w: new Writer(s as Socket<unknown>), early: [], finPending: false };
          s.data = c;
          conns.set(c.id, c);
          send(OPEN, c.id, target);
        },
        data(s, d) {
          send(DATA, s.data.id, d);
          if (pipeW.busy) pauseReaders(conns);
        },
        drain: (s) => s.data.w!.drain(),
        end: (s) => send(FIN, s.data.id),
        close(s) {
          if (conns.delete(s.data.id)) send(CLOSE, s.data.id);
        },
      },
    });
  }
  console.log(`bare pair host: ${specs.join(" ")} over ${path}`);
}

const [role, path, ...rest] = Bun.argv.slice(2);
if (role === "vm" && path) vm(path);
else if (role === "host" && path) await host(path, rest);
else {
  console.error("usage: bare-pair.ts vm PIPE_PATH | host PIPE_PATH HOST_PORT:TARGET_IP:TARGET_PORT ...");
  process.exit(2);
}
