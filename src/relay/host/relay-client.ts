/**
 * The host's end of the pipe: dials, keeps one ready session, and redials with capped backoff
 * when the pipe breaks. Listeners stay open meanwhile; new connections wait a bounded time.
 */
import type { ConsolaInstance } from "consola";
import { EdgeportError } from "../../shared/errors.ts";
import type { Channel } from "../mux/channel.ts";
import { formatCloseReason } from "../mux/close-reason.ts";
import type { Destination } from "../mux/codec.ts";
import { type PipeSettings, Session } from "../mux/session.ts";
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
  close(): void;
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

export function createRelayClient(o: RelayClientOptions): RelayClient {
  const log = o.log;
  const description = formatTransportUrl(o.url);
  const minMs = o.backoffMinMs ?? 100;
  const maxMs = o.backoffMaxMs ?? 1000;
  let ready: Session | null = null;
  let dialling = false;
  let closed = false;
  let delay = minMs;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let failures = 0;
  let lastError = "";
  let pendingFailure: string | null = null;
  const waiters = new Set<(s: Session) => void>();

  function onReady(s: Session): void {
    ready = s;
    delay = minMs;
    log.info(`pipe up: ${description} (${s.describePeer()})${failures ? ` after ${failures} failed attempt(s)` : ""}`);
    failures = 0;
    for (const w of waiters) w(s);
    waiters.clear();
  }

  function onFailure(message: string): void {
    if (dialling) {
      // the pipe died before dialPipe() returned: handled once it has
      pendingFailure = message;
      return;
    }
    failures++;
    // log a state change once, not every retry; a bare close after our proof of the secret is the
    // same state as the refusal we saw ourselves (which of the two we see is a race)
    const same = message === lastError || (AUTH_REFUSED.test(message) && AUTH_REFUSED.test(lastError));
    if (failures === 1 || !same) log.warn(`pipe down: ${message}; redialling with backoff up to ${maxMs} ms`);
    else log.debug(`pipe still down (attempt ${failures}): ${message}`);
    lastError = message;
    schedule();
  }

  function schedule(): void {
    if (closed || timer || dialling) return;
    timer = setTimeout(() => {
      timer = null;
      void dial();
    }, delay);
    delay = Math.min(maxMs, delay * 2);
  }

  async function dial(): Promise<void> {
    if (closed || dialling || ready) return;
    dialling = true;
    try {
      await dialPipe(
        o.url,
        (pipe) => {
          const s = new Session({
            role: "host",
            pipe: o.pipe,
            version: o.version,
            log,
            onReady,
            ...(o.onOpen ? { onOpen: (ch: Channel, dest: Destination) => o.onOpen!(s, ch, dest) } : {}),
            onClosed: (sess, why) => {
              const wasReady = ready === sess;
              if (wasReady) ready = null;
              if (closed) return;
              onFailure(
                wasReady
                  ? `pipe lost: ${formatCloseReason(why)}`
                  : why.kind === "peer-closed"
                    ? handshakeClose(sess)
                    : formatCloseReason(why),
              );
            },
          });
          s.start(pipe);
          return s.handlers;
        },
        o.activity,
      );
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
      return ready || !lastError ? null : lastError;
    },
    session(timeoutMs) {
      if (ready) return Promise.resolve(ready);
      if (closed) return Promise.reject(new EdgeportError("E_PIPE_DOWN", "the relay is stopping"));
      // a client is waiting: skip the rest of the backoff
      if (timer) {
        clearTimeout(timer);
        timer = null;
      }
      if (!dialling) {
        delay = minMs;
        void dial();
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiters.delete(done);
          reject(
            new EdgeportError(
              "E_PIPE_DOWN",
              `the pipe to ${description} is down (${lastError || "not connected yet"}); waited ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        const done = (s: Session) => {
          clearTimeout(t);
          resolve(s);
        };
        waiters.add(done);
      });
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      ready?.close("relay stopping");
    },
  };
}
