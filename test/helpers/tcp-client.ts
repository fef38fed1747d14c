/** A test client on real sockets: writes with backpressure, hashes what it reads, reports how it ended. */
import { createHash } from "node:crypto";
import type { Socket } from "bun";

export interface Client {
  socket: Socket<undefined>;
  /** resolves once everything given was taken by the kernel */
  write(data: Uint8Array): Promise<void>;
  /** streams n bytes from gen, chunk by chunk, with backpressure */
  writeStream(gen: (n: number) => Uint8Array, total: number, chunk?: number): Promise<void>;
  received: number;
  text(): string;
  sha256(): string;
  /** the peer's FIN arrived (with allowHalfOpen, Bun may report it only as a clean close) */
  fin: boolean;
  /** resolves when the socket closed: null for a clean close, else the error code (ECONNRESET...) */
  closed: Promise<string | null>;
  /** resolves at the peer's FIN (null) or when the socket closed first (its error code) */
  eof: Promise<string | null>;
}

export const connectClient = (port: number, host = "127.0.0.1", o: { keepText?: boolean } = {}): Promise<Client> =>
  openClient({ hostname: host, port }, o);

/** The same client on a unix socket. */
export const unixClient = (path: string, o: { keepText?: boolean } = {}): Promise<Client> =>
  openClient({ unix: path }, o);

async function openClient(
  to: { hostname: string; port: number } | { unix: string },
  o: { keepText?: boolean },
): Promise<Client> {
  const hash = createHash("sha256");
  const chunks: Uint8Array[] = [];
  let drainWaiter: (() => void) | null = null;
  const { promise: closed, resolve: resolveClosed } = Promise.withResolvers<string | null>();
  const c = { received: 0, fin: false } as Client;
  const { promise: eof, resolve: resolveEof } = Promise.withResolvers<string | null>();
  const socket = await Bun.connect({
    ...(to as { unix: string }), // one of the two: Bun's overloads take each apart
    allowHalfOpen: true,
    socket: {
      data(_s, d) {
        c.received += d.length;
        hash.update(d);
        if (o.keepText !== false) chunks.push(d);
      },
      drain() {
        const w = drainWaiter;
        drainWaiter = null;
        w?.();
      },
      end() {
        c.fin = true;
        resolveEof(null);
      },
      close(_s, err) {
        const code = err ? ((err as { code?: string }).code ?? err.message) : null;
        if (!code) c.fin = true;
        drainWaiter?.();
        resolveEof(code);
        resolveClosed(code);
      },
      error() {},
    },
  });
  let closedFlag = false;
  void closed.then(() => (closedFlag = true));
  c.socket = socket;
  c.closed = closed;
  c.eof = eof;
  c.write = async (data) => {
    let off = 0;
    while (off < data.length) {
      if (closedFlag) throw new Error("socket closed while writing");
      const n = socket.write(data.subarray(off));
      if (n < 0) throw new Error("socket closed while writing");
      off += n;
      if (off < data.length) await new Promise<void>((r) => (drainWaiter = r));
    }
  };
  c.writeStream = async (gen, total, chunk = 256 * 1024) => {
    for (let sent = 0; sent < total; sent += chunk) await c.write(gen(Math.min(chunk, total - sent)));
  };
  c.text = () => Buffer.concat(chunks).toString();
  c.sha256 = () => hash.copy().digest("hex");
  return c;
}

export const sha256 = (data: Uint8Array | string): string => createHash("sha256").update(data).digest("hex");

/** sha256 of n bytes of a generator, computed in chunks */
export function streamSha(gen: (n: number) => Uint8Array, total: number, chunk = 1 << 20): string {
  const h = createHash("sha256");
  for (let done = 0; done < total; done += chunk) h.update(gen(Math.min(chunk, total - done)));
  return h.digest("hex");
}

/** A free TCP port on 127.0.0.1 (and, by choosing from a high range, very likely on ::1 too). */
export function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}

/**
 * A run of n consecutive free ports on both loopbacks, below Linux's ephemeral range (32768+),
 * so the tests' own client sockets can never be holding one of them.
 */
export function freePortRange(n: number): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 15000 + Math.floor(Math.random() * (32000 - 15000 - n));
    const held: { stop(c?: boolean): void }[] = [];
    try {
      for (let i = 0; i < n; i++) {
        held.push(Bun.listen({ hostname: "127.0.0.1", port: base + i, exclusive: true, socket: { data() {} } }));
        held.push(Bun.listen({ hostname: "::1", port: base + i, exclusive: true, socket: { data() {} } }));
      }
      return base;
    } catch {
      // taken: try another base
    } finally {
      for (const l of held) l.stop(true);
    }
  }
  throw new Error("no free port range");
}

/** True when host:port can be bound right now (nobody listens there). */
export function canBind(host: string, port: number): boolean {
  try {
    Bun.listen({ hostname: host, port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
}

/**
 * Connects and reports how the connection ended: null for a clean close, else the error code.
 * A reset that comes right after the handshake can beat Bun's own view of the connect; it is
 * reported the same way, as "ECONNRESET".
 */
export async function endingOf(port: number, host = "127.0.0.1", send?: string): Promise<string | null> {
  let c: Client;
  try {
    c = await connectClient(port, host);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ECONNRESET") return code;
    throw e;
  }
  if (send !== undefined) await c.write(new TextEncoder().encode(send)).catch(() => undefined);
  return c.closed;
}
