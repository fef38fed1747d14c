/**
 * Dialling for the forwarder: an Open from the host is checked against the policy, then its
 * destination (TCP, unix socket, or a UDP flow) is connected and the channel accepted, or refused
 * with the status that says why.
 */
import type { ConsolaInstance } from "consola";
import { formatHostPort, formatIp } from "../../shared/address.ts";
import { errnoOf } from "../../shared/errors.ts";
import { safe } from "../../shared/log.ts";
import { DatagramEndpoint } from "../endpoints/datagram-endpoint.ts";
import { type RelayConn, relaySocketHandlers, socketEndpoint } from "../endpoints/socket-endpoint.ts";
import type { Channel } from "../mux/channel.ts";
import type { Destination } from "../mux/codec.ts";
import { OPEN_ERROR, OPEN_FORBIDDEN, OPEN_REFUSED, OPEN_TIMEOUT, OPEN_UNREACHABLE } from "../mux/constants.ts";
import type { Session } from "../mux/session.ts";
import type { DialPolicy } from "./dial-policy.ts";

export const describeDest = (d: Destination): string =>
  d.proto === "unix" ? `unix:${safe(d.path)}` : `${d.proto}/${formatHostPort(formatIp(d.ip), d.port)}`;

const STATUS_BY_ERRNO: Record<string, number> = {
  ECONNREFUSED: OPEN_REFUSED,
  ENOENT: OPEN_REFUSED, // a unix socket path with nobody behind it
  EHOSTUNREACH: OPEN_UNREACHABLE,
  ENETUNREACH: OPEN_UNREACHABLE,
  EADDRNOTAVAIL: OPEN_UNREACHABLE,
  ETIMEDOUT: OPEN_TIMEOUT,
  EACCES: OPEN_FORBIDDEN, // the kernel's own refusal, e.g. UDP to a broadcast address
};

/** What dialling a channel needs from the forwarder. */
export interface DialContext {
  policy: DialPolicy;
  dialTimeoutMs: number;
  log: ConsolaInstance;
  activity: () => void;
}

/** Serves an Open from the host: checks the policy, then connects the destination or refuses the channel. */
export async function dial(ctx: DialContext, session: Session, ch: Channel, dest: Destination): Promise<void> {
  const what = `channel ${ch.id} to ${describeDest(dest)}`;
  const verdict = await ctx.policy.check(dest);
  if (!verdict.ok) {
    ctx.log.warn(`refused ${what}: ${verdict.reason}`);
    session.reject(ch, OPEN_FORBIDDEN, verdict.reason);
    return;
  }
  if (dest.proto === "udp") return openFlow(ctx, session, ch, dest, what);
  return connectStream(ctx, session, ch, dest, what);
}

/** A TCP or unix-socket destination: connects it within the dial timeout, then accepts the channel. */
async function connectStream(
  ctx: DialContext,
  session: Session,
  ch: Channel,
  dest: Destination,
  what: string,
): Promise<void> {
  const target = dest.proto === "unix" ? { unix: dest.path } : { hostname: formatIp(dest.ip), port: dest.port };
  const conn: RelayConn = { ch };
  let timer: ReturnType<typeof setTimeout> | null = null;
  try {
    const connecting = Bun.connect<RelayConn>({
      ...target,
      allowHalfOpen: true,
      data: conn,
      socket: {
        ...relaySocketHandlers,
        open(sock) {
          if (timer) clearTimeout(timer);
          session.accept(ch, socketEndpoint(sock));
          ctx.log.debug(`opened ${what}`);
        },
      },
    } as Parameters<typeof Bun.connect<RelayConn>>[0]);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(Object.assign(new Error("connect timed out"), { code: "ETIMEDOUT" })),
        ctx.dialTimeoutMs,
      );
    });
    const sock = await Promise.race([connecting, timeout]);
    if (ch.closed) sock.end(); // the client went away while we dialled
  } catch (e) {
    if (timer) clearTimeout(timer);
    const code = errnoOf(e) ?? "EIO";
    const reason = `connect ${dest.proto === "unix" ? safe(dest.path) : formatHostPort(formatIp(dest.ip), dest.port)}: ${code}`;
    ctx.log.info(`${what} failed: ${reason}`);
    session.reject(ch, STATUS_BY_ERRNO[code] ?? OPEN_ERROR, reason);
    conn.ch = null; // a late connect after the timeout must not feed the channel
  }
}

/**
 * A UDP flow: one connected socket towards the target, so only the target's replies come back
 * (the kernel filters other sources), and each client of the host is its own source here.
 * Every way the socket can fail to open (Bun throws some errors, e.g. EACCES for a broadcast
 * address, synchronously; others reject) ends in an open error and a Close for the channel.
 */
async function openFlow(
  ctx: DialContext,
  session: Session,
  ch: Channel,
  dest: { ip: Uint8Array; port: number },
  what: string,
): Promise<void> {
  const target = formatIp(dest.ip);
  let ep: DatagramEndpoint | null = null;
  let sock: Awaited<ReturnType<typeof Bun.udpSocket>>;
  try {
    sock = await Bun.udpSocket({
      hostname: dest.ip.length === 16 ? "::" : "0.0.0.0",
      port: 0,
      connect: { hostname: target, port: dest.port },
      socket: {
        // a connected socket only hears its target: the record's address is the target's
        data: (_sock, msg) => {
          ctx.activity();
          ep?.deliver(msg, dest.ip, dest.port);
        },
        // ICMP port unreachable and the like: UDP has no connection to fail, the flow stays.
        // Bun 1.4 calls this with the error alone (the socket is `this`), unlike its typings'
        // (socket, error): take the error from wherever it is
        error: (...args: unknown[]) => {
          const err = args.find((arg) => arg instanceof Error);
          ctx.log.debug(`${what}: ${errnoOf(err) ?? (err as Error | undefined)?.message ?? "socket error"}`);
        },
      },
    });
  } catch (e) {
    const code = errnoOf(e) ?? "EIO";
    const reason = `udp connect ${formatHostPort(target, dest.port)}: ${code}`;
    ctx.log.info(`${what} failed: ${reason}`);
    session.reject(ch, STATUS_BY_ERRNO[code] ?? OPEN_ERROR, reason);
    return;
  }
  if (ch.closed) {
    sock.close();
    return;
  }
  const opened = new DatagramEndpoint(
    (payload) => void sock.send(payload),
    () => sock.close(),
  );
  ep = opened;
  session.accept(ch, opened);
  opened.attach(ch);
  ctx.log.debug(`opened ${what}`);
}
