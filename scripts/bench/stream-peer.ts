#!/usr/bin/env bun
/**
 * The VM side of the socket-forward benchmark, the same code behind a unix socket and a TCP port so
 * that only the ends differ: `stream-peer.ts DIR TCP_PORT` listens on DIR/sink.sock and
 * 127.0.0.1:TCP_PORT (sink: reads until the client's FIN, answers "<bytes>\n", then FIN) and on
 * DIR/source.sock and 127.0.0.1:TCP_PORT+1 (source: reads "<N>\n", sends N bytes, then FIN).
 * Prints "ready" when all four listen.
 */
import type { Socket, SocketHandler } from "bun";

const [dir, portText] = Bun.argv.slice(2);
const port = Number(portText);
const BLOCK = new Uint8Array(256 * 1024).fill(97);

interface Conn {
  bytes: number;
  line: string;
  left: number;
}

const sink: SocketHandler<Conn> = {
  open(s) {
    s.data = { bytes: 0, line: "", left: 0 };
  },
  data(s, d) {
    s.data.bytes += d.length;
  },
  end(s) {
    s.end(`${s.data.bytes}\n`);
  },
  error() {},
};

function pump(s: Socket<Conn>): void {
  while (s.data.left > 0) {
    const n = s.write(BLOCK.subarray(0, Math.min(BLOCK.length, s.data.left)));
    if (n <= 0) return;
    s.data.left -= n;
  }
  s.end();
}

const source: SocketHandler<Conn> = {
  open(s) {
    s.data = { bytes: 0, line: "", left: -1 };
  },
  data(s, d) {
    if (s.data.left >= 0) return;
    s.data.line += d.toString();
    const nl = s.data.line.indexOf("\n");
    if (nl < 0) return;
    s.data.left = Number(s.data.line.slice(0, nl));
    pump(s);
  },
  drain(s) {
    if (s.data.left > 0) pump(s);
  },
  error() {},
};

Bun.listen<Conn>({ unix: `${dir}/sink.sock`, allowHalfOpen: true, socket: sink });
Bun.listen<Conn>({ unix: `${dir}/source.sock`, allowHalfOpen: true, socket: source });
Bun.listen<Conn>({ hostname: "127.0.0.1", port, allowHalfOpen: true, socket: sink });
Bun.listen<Conn>({ hostname: "127.0.0.1", port: port + 1, allowHalfOpen: true, socket: source });
console.log("ready");
