/**
 * An HTTP/1.1 client over Bun.connect, for the Docker Engine on its Windows named pipe (fetch cannot
 * open one: oven-sh/bun#15350). One request a connection (Connection: close). The Response comes
 * as soon as its head has arrived; its body is a stream that follows the connection (Content-Length,
 * chunked, or until close), so an endless chunked /events stream is read as it arrives. Reading is
 * paused while the body's reader lags. The signal aborts the connect, the head and the body alike.
 * Takes a named pipe (\\.\pipe\NAME) or a unix socket path: Bun.connect opens both the same way;
 * streamRequest takes any byte stream (a channel of the pipe to the VM, for the engine there).
 */
import { EdgeportError } from "./errors.ts";
import { createResponseParser, type ResponseParser } from "./http-response.ts";

export interface PipeRequestInit {
  method?: string;
  headers?: ConstructorParameters<typeof Headers>[0];
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** bound of the answer's head (and trailers); default 16 KiB */
  maxHead?: number;
}

/**
 * A byte stream one exchange runs on: a Bun socket, or a channel of the pipe. write() returns the
 * bytes taken (fewer when full: the rest waits for drain), -1 once closed.
 */
export interface ByteStream {
  write(data: Uint8Array): number;
  /** the exchange is over: let go of the stream (a Bun socket is terminated) */
  terminate(): void;
  pause(): void;
  resume(): void;
}

/** What the stream reports to the exchange; calls after the exchange ended are ignored. */
export interface ByteStreamEvents {
  data(d: Uint8Array): void;
  /** the stream takes writes again */
  drain(): void;
  /** the peer ended the stream (FIN or close) */
  end(): void;
  error(e: unknown): void;
}

/** Opens a stream for one exchange; rejects (the connect error) when it cannot. */
export type StreamOpener = (events: ByteStreamEvents, signal?: AbortSignal) => Promise<ByteStream>;

/** what the body's stream may hold before the connection is paused */
const BODY_HIGH_WATER = 256 * 1024;

function requestBytes(url: URL, init: PipeRequestInit): Uint8Array {
  const body = typeof init.body === "string" ? Buffer.from(init.body) : init.body;
  const lines = [`${init.method ?? "GET"} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host || "localhost"}`];
  for (const [k, v] of new Headers(init.headers))
    if (k !== "host" && k !== "connection" && k !== "content-length") lines.push(`${k}: ${v}`);
  lines.push("connection: close");
  if (body) lines.push(`content-length: ${body.length}`);
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
  return body ? Buffer.concat([head, body]) : head;
}

const aborted = (signal: AbortSignal): unknown =>
  signal.reason ?? new DOMException("This operation was aborted", "AbortError");

/** One exchange on one connection: the parser's output turned into a Response and its stream. */
function exchange(init: PipeRequestInit) {
  const parser: ResponseParser = createResponseParser({ noBody: init.method === "HEAD", maxHead: init.maxHead });
  const answer = Promise.withResolvers<Response>();
  answer.promise.catch(() => undefined); // a rejection before the caller awaits is not unhandled
  let sock: ByteStream | null = null;
  let body: ReadableStreamDefaultController<Uint8Array> | null = null;
  let out: Uint8Array | null = null;
  let finished = false;
  let gotHead = false;

  function finish(err?: unknown): void {
    if (finished) return;
    finished = true;
    init.signal?.removeEventListener("abort", onAbort);
    sock?.terminate();
    if (!gotHead) answer.reject(err ?? new EdgeportError("E_PROTOCOL", "no answer"));
    else if (err !== undefined) body?.error(err);
    else body?.close();
  }
  function onAbort(): void {
    finish(aborted(init.signal!));
  }

  function respond(status: number, statusText: string, headers: Headers, done: boolean): void {
    gotHead = true;
    const stream = done
      ? null
      : new ReadableStream<Uint8Array>(
          {
            start: (c) => {
              body = c;
            },
            pull: () => sock?.resume(),
            cancel: () => finish(),
          },
          { highWaterMark: BODY_HIGH_WATER, size: (c) => c?.byteLength ?? 0 },
        );
    answer.resolve(new Response(stream, { status, statusText, headers }));
  }

  const events: ByteStreamEvents = {
    data(d) {
      if (finished) return;
      try {
        const p = parser.push(d);
        if (p.head) respond(p.head.status, p.head.statusText, p.head.headers, p.done && p.body.length === 0);
        for (const b of p.body) body?.enqueue(b);
        if (p.done) finish();
        else if (body && (body.desiredSize ?? 1) <= 0) sock?.pause();
      } catch (e) {
        finish(e);
      }
    },
    drain() {
      if (!out || !sock) return;
      const n = Math.max(sock.write(out), 0);
      out = n < out.length ? out.subarray(n) : null;
    },
    end() {
      if (finished) return;
      try {
        parser.end();
        finish();
      } catch (e) {
        finish(e);
      }
    },
    error(e) {
      finish(e);
    },
  };

  return {
    answer: answer.promise,
    events,
    onAbort,
    /** the connection is open: send the request, unless the exchange already ended */
    opened(s: ByteStream, bytes: Uint8Array): void {
      sock = s;
      if (finished) return void s.terminate();
      const n = Math.max(s.write(bytes), 0);
      if (n < bytes.length) out = bytes.subarray(n);
    },
  };
}

/** A Bun socket as the exchange's stream. */
const socketOpener =
  (path: string): StreamOpener =>
  async (events) => {
    const sock = await Bun.connect({
      unix: path,
      socket: {
        data: (_s, d) => events.data(d),
        drain: () => events.drain(),
        close: () => events.end(),
        error: (_s, e) => events.error(e),
      },
    });
    return {
      write: (d) => sock.write(d),
      terminate: () => sock.terminate(),
      pause: () => sock.pause(),
      resume: () => sock.resume(),
    };
  };

/**
 * Sends one request to the HTTP server at path; resolves with the answer once its head arrived.
 * Rejects with the connect error (its errno code, e.g. ENOENT), an E_PROTOCOL EdgeportError for a
 * malformed or cut-short answer, or the signal's reason; once resolved, those errors end the body's
 * stream instead.
 */
export function pipeRequest(path: string, url: string, init: PipeRequestInit = {}): Promise<Response> {
  return streamRequest(socketOpener(path), url, init);
}

/** pipeRequest over a stream that `open` gives: the same exchange, whatever carries the bytes. */
export async function streamRequest(open: StreamOpener, url: string, init: PipeRequestInit = {}): Promise<Response> {
  const { signal } = init;
  signal?.throwIfAborted();
  const bytes = requestBytes(new URL(url), init);
  const x = exchange(init);
  signal?.addEventListener("abort", x.onAbort, { once: true });
  try {
    x.opened(await open(x.events, signal), bytes);
  } catch (e) {
    signal?.removeEventListener("abort", x.onAbort);
    if (signal?.aborted) throw aborted(signal);
    throw e;
  }
  return x.answer;
}
