/**
 * HTTP/1.1 over a Windows named pipe, for what Bun cannot do there: Bun.serve and fetch take a unix
 * socket path but no named pipe (oven-sh/bun#15350: `Bun.serve({ unix: "\\\\.\\pipe\\x" })` fails
 * with EAFNOSUPPORT under Wine, ENOENT on Windows), while Bun.listen and Bun.connect do open named
 * pipes. Enough HTTP for the control API: one request a connection (Connection: close), bodies by
 * Content-Length, bounded sizes. The client side is pipe-http-client.ts.
 */

import { pipeRequest } from "./pipe-http-client.ts";

const MAX_HEAD = 16 * 1024;
/** a request's body (the server's bound); answers come from our own daemon and may be larger */
const MAX_REQUEST_BODY = 1024 * 1024;
const CRLF2 = "\r\n\r\n";

export type FetchHandler = (req: Request) => Response | Promise<Response>;

interface Head {
  first: string;
  headers: Headers;
  bodyStart: number;
  length: number | null;
}

/** A request's head once it has fully arrived, or null while it has not. */
function parseHead(buf: Buffer, maxBody: number): Head | null {
  const end = buf.indexOf(CRLF2);
  if (end < 0) {
    if (buf.length > MAX_HEAD) throw new Error("header too large");
    return null;
  }
  const [first = "", ...lines] = buf.subarray(0, end).toString("latin1").split("\r\n");
  const headers = new Headers();
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers.append(l.slice(0, i).trim(), l.slice(i + 1).trim());
  }
  const cl = headers.get("content-length");
  const length = cl === null ? null : Number(cl);
  if (length !== null && (!Number.isInteger(length) || length < 0 || length > maxBody))
    throw new Error("bad content-length");
  return { first, headers, bodyStart: end + CRLF2.length, length };
}

async function serialize(res: Response): Promise<Uint8Array> {
  const body = new Uint8Array(await res.arrayBuffer());
  const lines = [`HTTP/1.1 ${res.status} ${res.statusText || "-"}`];
  res.headers.forEach((v, k) => {
    if (k !== "content-length" && k !== "connection" && k !== "transfer-encoding") lines.push(`${k}: ${v}`);
  });
  lines.push(`content-length: ${body.length}`, "connection: close", "", "");
  return Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), body]);
}

interface ServerConn {
  buf: Buffer;
  busy: boolean;
  out: Uint8Array | null;
}

function flush(s: Bun.Socket<ServerConn>): void {
  const out = s.data.out;
  if (!out) return;
  const n = Math.max(s.write(out), 0);
  if (n < out.length) s.data.out = out.subarray(n);
  else {
    s.data.out = null;
    s.end();
  }
}

async function answer(s: Bun.Socket<ServerConn>, handler: FetchHandler): Promise<void> {
  let res: Response;
  try {
    const head = parseHead(s.data.buf, MAX_REQUEST_BODY);
    if (!head) return;
    const body = s.data.buf.subarray(head.bodyStart);
    if (body.length < (head.length ?? 0)) return;
    s.data.busy = true;
    const [method = "", target = "/"] = head.first.split(" ");
    const hasBody = method !== "GET" && method !== "HEAD";
    res = await handler(
      new Request(`http://localhost${target.startsWith("/") ? target : `/${target}`}`, {
        method,
        headers: head.headers,
        ...(hasBody ? { body: body.subarray(0, head.length ?? 0) } : {}),
      }),
    );
  } catch (e) {
    s.data.busy = true;
    res = new Response(JSON.stringify({ code: "E_BAD_ARG", message: (e as Error).message }), {
      status: 400,
      headers: { "content-type": "application/json" },
    });
  }
  s.data.out = await serialize(res);
  flush(s);
}

/**
 * Serves HTTP on a named pipe (\\.\pipe\NAME); each connection carries one request, and one that
 * stays silent for idleSeconds is closed (as Bun.serve does).
 */
export function servePipeHttp(path: string, handler: FetchHandler, idleSeconds = 10): { stop(): void } {
  const listener = Bun.listen<ServerConn>({
    unix: path,
    socket: {
      open(s) {
        s.data = { buf: Buffer.alloc(0), busy: false, out: null };
        s.timeout(idleSeconds);
      },
      timeout(s) {
        s.terminate();
      },
      data(s, d) {
        if (s.data.busy) return;
        s.data.buf = Buffer.concat([s.data.buf, d]);
        void answer(s, handler);
      },
      drain: flush,
      error() {},
    },
  });
  return { stop: () => listener.stop(true) };
}

/**
 * One HTTP request over a named pipe (src/shared/pipe-http-client.ts); rejects with the connect
 * error (its code, e.g. ENOENT).
 */
export async function pipeFetch(path: string, url: string, init: RequestInit): Promise<Response> {
  if (init.body != null && typeof init.body !== "string") throw new TypeError("pipeFetch: the body must be a string");
  return pipeRequest(path, url, {
    method: init.method,
    headers: init.headers as ConstructorParameters<typeof Headers>[0],
    body: init.body ?? undefined,
    signal: init.signal ?? undefined,
  });
}
