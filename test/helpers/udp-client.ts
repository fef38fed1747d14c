/** A UDP client for tests: one socket (one flow), replies queued in arrival order. */
import dgram from "node:dgram";

export interface UdpClient {
  readonly port: number;
  send(payload: Uint8Array | string): void;
  /** the next reply, or null after timeoutMs */
  next(timeoutMs?: number): Promise<Buffer | null>;
  /** sends and waits for one reply */
  request(payload: Uint8Array | string, timeoutMs?: number): Promise<Buffer | null>;
  readonly received: number;
  /** forgets replies not read yet */
  clear(): void;
  close(): void;
}

export async function udpClient(port: number, host = "127.0.0.1"): Promise<UdpClient> {
  const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  const queue: Buffer[] = [];
  let waiter: ((b: Buffer) => void) | null = null;
  let received = 0;
  sock.on("error", () => {}); // ICMP errors: a test sees them as missing replies
  sock.on("message", (m) => {
    received++;
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(m);
    } else queue.push(m);
  });
  await new Promise<void>((resolve) => sock.bind(0, host, () => resolve()));
  try {
    sock.setRecvBufferSize(4 << 20);
  } catch {}
  const c: UdpClient = {
    port: sock.address().port,
    send: (p) => sock.send(p, port, host),
    next(timeoutMs = 2000) {
      const q = queue.shift();
      if (q) return Promise.resolve(q);
      return new Promise((resolve) => {
        const t = setTimeout(() => {
          waiter = null;
          resolve(null);
        }, timeoutMs);
        waiter = (b) => {
          clearTimeout(t);
          resolve(b);
        };
      });
    },
    request(p, timeoutMs) {
      c.send(p);
      return c.next(timeoutMs);
    },
    get received() {
      return received;
    },
    clear: () => void queue.splice(0),
    close: () => sock.close(),
  };
  return c;
}
