/**
 * The host's end of the pipe: dials, keeps one ready session, and redials with capped backoff
 * when the pipe breaks. Listeners stay open meanwhile; new connections wait a bounded time.
 */
import type { ConsolaInstance } from "consola";
import { EdgeportError } from "../../shared/errors.ts";
import type { Channel } from "../mux/channel.ts";
import { type CloseReason, formatCloseReason } from "../mux/close-reason.ts";
import type { Destination } from "../mux/codec.ts";
import { type Pipe, type PipeSettings, Session } from "../mux/session.ts";
import { dialPipe } from "../transports/index.ts";
import { formatTransportUrl, type TransportUrl } from "../transports/url.ts";

export interface RelayClientOptions {
  url: TransportUrl;
  /** given whole to each session */
  pipe?: PipeSettings;
  /** first and largest delay between dial attempts */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  log: ConsolaInstance;
  version?: string;
  /** channels the VM opens (control requests from dockerd's proxy); refused when absent */
  onOpen?: (s: Session, ch: Channel, dest: Destination) => void;
  /** called on every chunk from the pipe (--spin's hook) */
  activity?: () => void;
}

export interface RelayClient {
  /** A ready session; waits up to timeoutMs for the pipe (E_PIPE_DOWN after that). */
  session(timeoutMs: number): Promise<Session>;
  readonly current: Session | null;
  readonly description: string;
  /** why the pipe is down (the last failure), null while it is up */
  readonly lastFailure: string | null;
  /** what happened to the pipe so far (the /metrics counters) */
  counters(): PipeCounters;
  close(): void;
}

export interface PipeCounters {
  /** the pipe came up again after it was lost or a dial failed (every ready session after the first) */
  reconnects: number;
  /** ready sessions that ended without this side closing them: the peer went away, a keepalive timed out, an error */
  resets: number;
  /** dials or handshakes that failed before a session was ready */
  failures: number;
}

/** Different secrets, seen by us or inferred from the peer's close. */
const AUTH_REFUSED =
  /^authentication failed: (the pipe secrets differ|the peer closed the pipe after checking our proof)/;

/**
 * The peer closed the pipe before the session was ready, without a word. After the hellos, with a
 * secret on both sides, the peer was checking our proof of the secret: it refused it (the
 * forwarder's log says why; its own proof, which would have told us, is dropped with the pipe).
 */
const handshakeClose = (s: Session): string =>
  s.negotiated !== null && s.peer?.auth
    ? "authentication failed: the peer closed the pipe after checking our proof of the pipe secret (the pipe secrets differ?)"
    : "the peer closed the pipe during the handshake";

/** The message for a session that ended: a lost pipe, or why it never became ready. */
const closeMessage = (wasReady: boolean, session: Session, why: CloseReason): string =>
  wasReady
    ? `pipe lost: ${formatCloseReason(why)}`
    : why.kind === "peer-closed"
      ? handshakeClose(session)
      : formatCloseReason(why);

/**
 * Counts failed attempts in a row and logs a change of state once, not every retry; keeps the
 * pipe's counters (every failure, lost session and recovery since the start).
 */
class FailureLog {
  count = 0;
  /** the last failure's message ("" before any) */
  last = "";
  private total = 0;
  private ups = 0;
  private resets = 0;

  constructor(
    private readonly log: ConsolaInstance,
    private readonly maxMs: number,
  ) {}

  failed(message: string): void {
    this.count++;
    this.total++;
    // a bare close after our proof of the secret is the same state as the refusal we saw
    // ourselves (which of the two we see is a race)
    const same = message === this.last || (AUTH_REFUSED.test(message) && AUTH_REFUSED.test(this.last));
    if (this.count === 1 || !same)
      this.log.warn(`pipe down: ${message}; redialling with backoff up to ${this.maxMs} ms`);
    else this.log.debug(`pipe still down (attempt ${this.count}): ${message}`);
    this.last = message;
  }

  /** The pipe is up: what its log line adds about the attempts before; the count starts again. */
  recovered(): string {
    this.ups++;
    const note = this.count ? ` after ${this.count} failed attempt(s)` : "";
    this.count = 0;
    return note;
  }

  /** A ready session ended without this side closing it (its failure is told too). */
  lost(): void {
    this.resets++;
  }

  counters(): PipeCounters {
    const failures = Math.max(0, this.total - this.resets);
    return { reconnects: Math.max(0, this.ups - 1), resets: this.resets, failures };
  }
}

/** The delay before the next dial: doubles from min up to max, back to min once the pipe is up. */
class Backoff {
  private delay: number;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    this.delay = minMs;
  }

  next(): number {
    const delay = this.delay;
    this.delay = Math.min(this.maxMs, this.delay * 2);
    return delay;
  }

  reset(): void {
    this.delay = this.minMs;
  }
}

/** The host's session on a freshly dialled pipe, started at once. */
function hostSession(
  o: RelayClientOptions,
  pipe: Pipe,
  onReady: (session: Session) => void,
  onClosed: (session: Session, why: CloseReason) => void,
): Session {
  const session = new Session({
    role: "host",
    pipe: o.pipe,
    version: o.version,
    log: o.log,
    onReady,
    ...(o.onOpen ? { onOpen: (ch: Channel, dest: Destination) => o.onOpen!(session, ch, dest) } : {}),
    onClosed,
  });
  session.start(pipe);
  return session;
}

/** Waits for a ready session: resolves when `waiters` are called, fails with E_PIPE_DOWN after timeoutMs. */
function waitForSession(
  waiters: Set<(session: Session) => void>,
  timeoutMs: number,
  down: () => string,
): Promise<Session> {
  return new Promise((resolve, reject) => {
    const timeout = setTimeout(() => {
      waiters.delete(done);
      reject(new EdgeportError("E_PIPE_DOWN", `${down()}; waited ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (session: Session) => {
      clearTimeout(timeout);
      resolve(session);
    };
    waiters.add(done);
  });
}

export function createRelayClient(o: RelayClientOptions): RelayClient {
  const description = formatTransportUrl(o.url);
  const maxMs = o.backoffMaxMs ?? 1000;
  const backoff = new Backoff(o.backoffMinMs ?? 100, maxMs);
  const failures = new FailureLog(o.log, maxMs);
  let ready: Session | null = null;
  let dialling = false;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let pendingFailure: string | null = null;
  const waiters = new Set<(session: Session) => void>();

  function onReady(session: Session): void {
    ready = session;
    backoff.reset();
    o.log.info(`pipe up: ${description} (${session.describePeer()})${failures.recovered()}`);
    for (const wake of waiters) wake(session);
    waiters.clear();
  }

  function onClosed(session: Session, why: CloseReason): void {
    const wasReady = ready === session;
    if (wasReady) ready = null;
    if (wasReady && !closed) failures.lost();
    if (!closed) onFailure(closeMessage(wasReady, session, why));
  }

  function onFailure(message: string): void {
    if (dialling) {
      // the pipe died before dialPipe() returned: handled once it has
      pendingFailure = message;
      return;
    }
    failures.failed(message);
    schedule();
  }

  function schedule(): void {
    if (closed || timer || dialling) return;
    timer = setTimeout(() => {
      timer = null;
      void dial();
    }, backoff.next());
  }

  async function dial(): Promise<void> {
    if (closed || dialling || ready) return;
    dialling = true;
    try {
      await dialPipe(o.url, (pipe) => hostSession(o, pipe, onReady, onClosed).handlers, o.activity);
    } catch (e) {
      dialling = false;
      onFailure((e as Error).message);
      return;
    }
    dialling = false;
    if (pendingFailure !== null) {
      const message = pendingFailure;
      pendingFailure = null;
      onFailure(message);
    }
  }

  void dial();

  return {
    description,
    get current() {
      return ready;
    },
    get lastFailure() {
      return ready || !failures.last ? null : failures.last;
    },
    counters: () => failures.counters(),
    session(timeoutMs) {
      if (ready) return Promise.resolve(ready);
      if (closed) return Promise.reject(new EdgeportError("E_PIPE_DOWN", "the relay is stopping"));
      // a client is waiting: skip the rest of the backoff
      if (timer) {
        clearTimeout(timer);
        timer = null;
      }
      if (!dialling) {
        backoff.reset();
        void dial();
      }
      return waitForSession(
        waiters,
        timeoutMs,
        () => `the pipe to ${description} is down (${failures.last || "not connected yet"})`,
      );
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      ready?.close("relay stopping");
    },
  };
}
