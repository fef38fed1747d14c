/**
 * The VM side: accepts pipes, and for each Open dials the destination if the policy allows it.
 * A new pipe may arrive while an old one is still open (the host redialled): each is served.
 */
import type { ConsolaInstance } from "consola";
import { encodeLine } from "../control/protocol.ts";
import { type RelayConn, relaySocketHandlers, socketEndpoint } from "../endpoints/socket-endpoint.ts";
import { formatCloseReason } from "../mux/close-reason.ts";
import { CONTROL_DEST } from "../mux/constants.ts";
import { type Pipe, type PipeSettings, Session } from "../mux/session.ts";
import { listenPipes, type PipeListener, prepareUnixPath } from "../transports/index.ts";
import type { TransportUrl } from "../transports/url.ts";
import { type DialContext, dial } from "./dial.ts";
import type { DialPolicy } from "./dial-policy.ts";
import { type ListenerReporting, reportListeners } from "./listeners/report-channel.ts";
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
  /** --report-listeners: the VM's listeners, reported to each host that speaks the extension */
  listeners?: ListenerReporting;
}

export interface Forwarder {
  readonly address: string;
  /** the VM-local control socket, when --control-listen was given */
  readonly controlPath: string | null;
  readonly sessions: Set<Session>;
  close(): void;
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
    onReady: (sess) => {
      log.info(`pipe up: ${pipe.description} (${sess.describePeer()})`);
      if (o.listeners) reportListeners(sess, o.listeners, log);
    },
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
