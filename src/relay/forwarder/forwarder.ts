/**
 * The VM side: accepts pipes, and for each Open dials the destination if the policy allows it.
 * A new pipe may arrive while an old one is still open (the host redialled): each is served.
 */
import type { ConsolaInstance } from "consola";
import { formatHostPort, formatIp } from "../../shared/address.ts";
import { errnoOf } from "../../shared/errors.ts";
import { safe } from "../../shared/log.ts";
import { encodeLine } from "../control/protocol.ts";
import { DatagramEndpoint } from "../endpoints/datagram-endpoint.ts";
import { type RelayConn, relaySocketHandlers, socketEndpoint } from "../endpoints/socket-endpoint.ts";
import type { Channel } from "../mux/channel.ts";
import { formatCloseReason } from "../mux/close-reason.ts";
import type { Destination } from "../mux/codec.ts";
import {
  CONTROL_DEST,
  OPEN_ERROR,
  OPEN_FORBIDDEN,
  OPEN_REFUSED,
  OPEN_TIMEOUT,
  OPEN_UNREACHABLE,
} from "../mux/constants.ts";
import { type Pipe, type PipeSettings, Session } from "../mux/session.ts";
import { listenPipes, type PipeListener, prepareUnixPath } from "../transports/index.ts";
import type { TransportUrl } from "../transports/url.ts";
import type { DialPolicy } from "./dial-policy.ts";
import { RepeatLimiter } from "./repeat-limiter.ts";

export interface ForwarderOptions {
  listen: TransportUrl;
  policy: DialPolicy;
  /** given whole to each session (`plain`: speak plain vpnkit, no extensions) */
  pipe?: PipeSettings;
  dialTimeoutMs?: number;
  log: ConsolaInstance;
  version?: string;
  /** called when the last pipe of a stdio: forwarder ends */
  onStdioEnd?: () => void;
  /** a VM-local unix socket whose connections become control channels to the host (edgeport docker-proxy) */
  controlListen?: string;
  /** called on traffic from the pipe and from UDP targets (--spin's hook) */
  activity?: () => void;
  /** a warning that repeats (a refused pipe) is logged at most once in this long, with a count (60 s) */
  repeatLogMs?: number;
}

export interface Forwarder {
  readonly address: string;
  /** the VM-local control socket, when --control-listen was given */
  readonly controlPath: string | null;
  readonly sessions: Set<Session>;
  close(): void;
}

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
interface DialContext {
  policy: DialPolicy;
  dialTimeoutMs: number;
  log: ConsolaInstance;
  activity: () => void;
}

/** Serves an Open from the host: checks the policy, then connects the destination or refuses the channel. */
async function dial(ctx: DialContext, session: Session, ch: Channel, dest: Destination): Promise<void> {
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

/** A warning that repeats (a host redialling with a wrong secret every second) is logged once an interval, with a count. */
function repeatedWarner(log: ConsolaInstance, intervalMs: number): (line: string) => void {
  const repeats = new RepeatLimiter({ intervalMs, now: () => performance.now() });
  return (line) => {
    const verdict = repeats.hit(line);
    if (!verdict.log) return log.debug(line);
    const held = verdict.held
      ? ` (and ${verdict.held} more like it in the last ${Math.round(verdict.sinceMs / 1000)} s)`
      : "";
    log.warn(`${line}${held}`);
  };
}

/** One session per accepted pipe: it dials what the host opens, and logs how the pipe ended. */
function serveSession(
  o: ForwarderOptions,
  ctx: DialContext,
  sessions: Set<Session>,
  warnRepeated: (line: string) => void,
  pipe: Pipe,
): Session {
  const log = ctx.log;
  const session = new Session({
    role: "vm",
    pipe: o.pipe,
    version: o.version,
    log,
    onOpen: (ch, dest) => void dial(ctx, session, ch, dest),
    onReady: (sess) => log.info(`pipe up: ${pipe.description} (${sess.describePeer()})`),
    onClosed: (sess, why) => {
      sessions.delete(sess);
      const gone = why.kind === "peer-closed" || why.kind === "pipe-error";
      if (sess.negotiated === null && gone) log.debug(`pipe ${pipe.description} left during the handshake`);
      else if (why.kind === "auth") warnRepeated(`pipe refused: ${formatCloseReason(why)}`);
      else if (!gone && why.kind !== "local") warnRepeated(`pipe down: ${formatCloseReason(why)}`);
      else log.info(`pipe down: ${formatCloseReason(why)}`);
      if (o.listen.kind === "stdio") o.onStdioEnd?.();
    },
  });
  sessions.add(session);
  session.start(pipe);
  return session;
}

/** Each local connection is relayed, byte for byte, over a channel the VM opens to the host's control service. */
function listenControl(path: string, sessions: Set<Session>, log: ConsolaInstance) {
  prepareUnixPath(path);
  const old = process.umask(0o077);
  try {
    return Bun.listen<RelayConn>({
      unix: path,
      allowHalfOpen: true,
      socket: {
        ...relaySocketHandlers,
        open(sock) {
          sock.data = { ch: null };
          const session = [...sessions].reverse().find((candidate) => candidate.state === "ready");
          if (!session) {
            sock.write(encodeLine({ ok: false, error: "the pipe to the host is down" }));
            sock.end();
            return;
          }
          sock.data.ch = session.open({ proto: "unix", path: CONTROL_DEST }, socketEndpoint(sock));
          log.debug(`control request relayed to the host on channel ${sock.data.ch.id}`);
        },
      },
    });
  } finally {
    process.umask(old);
  }
}

export function startForwarder(o: ForwarderOptions): Forwarder {
  const ctx: DialContext = {
    policy: o.policy,
    dialTimeoutMs: o.dialTimeoutMs ?? 10_000,
    log: o.log,
    activity: o.activity ?? (() => {}),
  };
  const sessions = new Set<Session>();
  const warnRepeated = repeatedWarner(o.log, o.repeatLogMs ?? 60_000);
  const listener: PipeListener = listenPipes(
    o.listen,
    (pipe) => serveSession(o, ctx, sessions, warnRepeated, pipe).handlers,
  );
  const control = o.controlListen ? listenControl(o.controlListen, sessions, o.log) : null;
  return {
    address: listener.address,
    controlPath: o.controlListen ?? null,
    sessions,
    close() {
      control?.stop(true);
      listener.close();
      for (const session of sessions) session.close("forwarder stopping");
    },
  };
}
