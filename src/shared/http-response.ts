/**
 * An incremental HTTP/1.1 response parser: bytes in as they arrive (split anywhere), the head and
 * the body's bytes out. Bodies by Content-Length, by `Transfer-Encoding: chunked` (chunk
 * extensions and trailers are read and dropped) or until the connection closes. Pure: no sockets,
 * and every malformed answer is an E_PROTOCOL error saying what was wrong.
 */
import { EdgeportError } from "./errors.ts";

export const MAX_RESPONSE_HEAD = 16 * 1024;
/** a chunk-size line: hex digits, optional extensions */
const MAX_CHUNK_LINE = 1024;
const CRLF = Buffer.from("\r\n");
const EMPTY = Buffer.alloc(0);

export interface ResponseHead {
  status: number;
  statusText: string;
  headers: Headers;
}

export interface Parsed {
  /** set by the push that completed the head */
  head?: ResponseHead;
  /** body bytes this push completed (views into the pushed bytes, not copies) */
  body: Uint8Array[];
  /** the message is complete: later bytes are ignored */
  done: boolean;
}

export interface ResponseParser {
  push(bytes: Uint8Array): Parsed;
  /** the connection closed: ends a body that runs until close; throws when the answer was cut short */
  end(): void;
}

type State = "head" | "length" | "close" | "chunk-size" | "chunk-data" | "chunk-crlf" | "trailers" | "done";

const bad = (what: string) => new EdgeportError("E_PROTOCOL", `malformed HTTP answer: ${what}`);
/** the peer went away mid-answer (an engine restarting): not malformed, cut short */
const cut = (what: string) => new EdgeportError("E_PROTOCOL", `the connection closed ${what}`);

function parseHead(text: string): ResponseHead {
  const [first = "", ...lines] = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(first);
  if (!m) throw bad(`status line ${JSON.stringify(first.slice(0, 80))}`);
  const headers = new Headers();
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i <= 0 || /\s/.test(l.slice(0, i))) throw bad(`header line ${JSON.stringify(l.slice(0, 80))}`);
    headers.append(l.slice(0, i), l.slice(i + 1).trim());
  }
  return { status: Number(m[1]), statusText: m[2] ?? "", headers };
}

/** How the body after this head is delimited. */
function bodyMode(head: ResponseHead, noBody: boolean): { state: State; length: number } {
  const { status, headers } = head;
  if (noBody || status === 204 || status === 304) return { state: "done", length: 0 };
  const te = headers.get("transfer-encoding");
  if (te !== null) {
    if (te.trim().toLowerCase() !== "chunked") throw bad(`transfer-encoding "${te}" (only chunked is understood)`);
    return { state: "chunk-size", length: 0 };
  }
  const cl = headers.get("content-length");
  if (cl === null) return { state: "close", length: 0 };
  // a repeated header arrives joined with ", "; equal copies are allowed (RFC 9110 8.6)
  const values = new Set(cl.split(",").map((v) => v.trim()));
  const n = values.size === 1 && /^\d{1,15}$/.test([...values][0]!) ? Number([...values][0]) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw bad(`content-length "${cl}"`);
  return { state: n === 0 ? "done" : "length", length: n };
}

/** The parser's state between pushes; each step reads from one offset and says where it stopped. */
class Parser implements ResponseParser {
  private state: State = "head";
  /** the unread tail of the last push (an unfinished head, chunk-size line or trailer) */
  private pending: Buffer = EMPTY;
  /** bytes left in the body (length) or in the current chunk */
  private left = 0;
  private trailerBytes = 0;
  private started = false;

  constructor(
    private readonly noBody: boolean,
    private readonly maxHead: number,
  ) {}

  push(bytes: Uint8Array): Parsed {
    const out: Parsed = { body: [], done: false };
    if (bytes.length) this.started = true;
    const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const buf = this.pending.length ? Buffer.concat([this.pending, input]) : input;
    this.pending = EMPTY;
    for (let i = 0; i < buf.length && this.state !== "done"; ) {
      const next = this.step(buf, i, out);
      if (next < 0) break;
      i = next;
    }
    out.body = out.body.filter((b) => b.length > 0);
    out.done = this.state === "done";
    return out;
  }

  end(): void {
    const { state } = this;
    this.state = "done";
    if (state === "done" || state === "close") return;
    if (state === "head") throw cut(this.started ? "inside the answer's head" : "without an answer");
    if (state === "length") throw cut(`with ${this.left} bytes of the body missing`);
    throw cut("inside a chunked body");
  }

  /** One step from offset i: the next offset, or -1 when more bytes are needed. */
  private step(buf: Buffer, i: number, out: Parsed): number {
    switch (this.state) {
      case "head":
        return this.head(buf, i, out);
      case "length":
      case "chunk-data": {
        const n = Math.min(this.left, buf.length - i);
        out.body.push(buf.subarray(i, i + n));
        this.left -= n;
        if (this.left === 0) this.state = this.state === "length" ? "done" : "chunk-crlf";
        return i + n;
      }
      case "close":
        out.body.push(buf.subarray(i));
        return buf.length;
      case "chunk-size":
        return this.chunkSize(buf, i);
      case "chunk-crlf":
        if (buf.length - i < 2) return this.keep(buf, i);
        if (buf[i] !== 13 || buf[i + 1] !== 10) throw bad("chunk data longer than its size");
        this.state = "chunk-size";
        return i + 2;
      case "trailers": {
        const l = this.line(buf, i, this.maxHead - this.trailerBytes, "trailers");
        if (!l) return -1;
        this.trailerBytes += l.next - i;
        if (l.text === "") this.state = "done";
        return l.next;
      }
      case "done":
        return buf.length;
    }
  }

  private keep(buf: Buffer, i: number): -1 {
    this.pending = buf.subarray(i);
    return -1;
  }

  private head(buf: Buffer, i: number, out: Parsed): number {
    const end = buf.indexOf("\r\n\r\n", i);
    if (end < 0 || end - i > this.maxHead) {
      if (buf.length - i > this.maxHead) throw bad(`head larger than ${this.maxHead} bytes`);
      return this.keep(buf, i);
    }
    const head = parseHead(buf.subarray(i, end).toString("latin1"));
    if (head.status >= 100 && head.status < 200 && head.status !== 101) return end + 4; // interim: skip
    if (head.status < 200 || head.status > 599) throw bad(`status ${head.status}`);
    out.head = head;
    ({ state: this.state, length: this.left } = bodyMode(head, this.noBody));
    return end + 4;
  }

  private chunkSize(buf: Buffer, i: number): number {
    const l = this.line(buf, i, MAX_CHUNK_LINE, "chunk-size line");
    if (!l) return -1;
    const hex = l.text.split(";")[0]!.trim();
    if (!/^[0-9a-fA-F]{1,13}$/.test(hex)) throw bad(`chunk size ${JSON.stringify(l.text.slice(0, 40))}`);
    this.left = Number.parseInt(hex, 16);
    this.state = this.left === 0 ? "trailers" : "chunk-data";
    return l.next;
  }

  /** A CRLF-terminated line starting at i, or null (the rest kept for the next push). */
  private line(buf: Buffer, i: number, max: number, what: string): { text: string; next: number } | null {
    const nl = buf.indexOf(CRLF, i);
    if (nl < 0 || nl - i > max) {
      if (buf.length - i > max || nl >= 0) throw bad(`${what} longer than ${max} bytes`);
      this.keep(buf, i);
      return null;
    }
    return { text: buf.subarray(i, nl).toString("latin1"), next: nl + 2 };
  }
}

/**
 * noBody: the request was a HEAD, so no body follows whatever the head says. maxHead bounds the
 * head and the trailers.
 */
export function createResponseParser(o: { noBody?: boolean; maxHead?: number } = {}): ResponseParser {
  return new Parser(!!o.noBody, o.maxHead ?? MAX_RESPONSE_HEAD);
}
