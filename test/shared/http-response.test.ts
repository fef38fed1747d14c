/**
 * The incremental response parser (pure): every way a response can be split across reads gives
 * the same head and body, and a malformed answer is an error saying what was wrong.
 */
import { describe, expect, test } from "bun:test";
import { createResponseParser } from "../../src/shared/http-response.ts";

const enc = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

/** Feeds the pieces; returns the status, the body as text, and whether the message completed. */
function feed(pieces: Uint8Array[], o: { noBody?: boolean; close?: boolean } = {}) {
  const p = createResponseParser({ noBody: o.noBody });
  let status = 0;
  let done = false;
  const body: Buffer[] = [];
  for (const piece of pieces) {
    const r = p.push(piece);
    if (r.head) status = r.head.status;
    body.push(...r.body.map((b) => Buffer.from(b)));
    done ||= r.done;
  }
  if (o.close) p.end();
  return { status, body: Buffer.concat(body).toString("latin1"), done };
}

const EVENTS =
  "HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
  '1e\r\n{"Type":"container","Action":"\r\n' +
  '7;ext=1\r\nstart"}\r\n' +
  "1\r\n\n\r\n" +
  "0\r\nX-Trailer: 1\r\n\r\n";
const EVENTS_BODY = '{"Type":"container","Action":"start"}\n';

describe("http-response parser", () => {
  test("a chunked body split at every position, in two reads and in three", () => {
    const all = enc(EVENTS);
    for (let i = 0; i <= all.length; i++) {
      expect(feed([all.subarray(0, i), all.subarray(i)])).toEqual({ status: 200, body: EVENTS_BODY, done: true });
      for (let j = i; j <= all.length; j += 7)
        expect(feed([all.subarray(0, i), all.subarray(i, j), all.subarray(j)]).body).toBe(EVENTS_BODY);
    }
  });

  test("a chunked body one byte a read", () => {
    const all = enc(EVENTS);
    expect(feed(Array.from(all, (_, i) => all.subarray(i, i + 1)))).toEqual({
      status: 200,
      body: EVENTS_BODY,
      done: true,
    });
  });

  test("an open chunked stream: each chunk's bytes come out as they arrive, not done", () => {
    const p = createResponseParser();
    const r1 = p.push(enc("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"));
    expect(r1.head?.headers.get("transfer-encoding")).toBe("chunked");
    expect(r1.body.map((b) => Buffer.from(b).toString())).toEqual(["ab"]);
    const r2 = p.push(enc("cde\r\n3\r\nfg"));
    expect(r2.body.map((b) => Buffer.from(b).toString())).toEqual(["cde", "fg"]);
    expect(r2.done).toBe(false);
  });

  test("Content-Length split at every position; bytes past it are ignored", () => {
    const all = enc('HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"ok":true}garbage');
    for (let i = 0; i <= all.length; i++)
      expect(feed([all.subarray(0, i), all.subarray(i)])).toEqual({ status: 200, body: '{"ok":true}', done: true });
  });

  test.each([
    ["204 with no body", "HTTP/1.1 204 No Content\r\n\r\n", {}, { status: 204, body: "", done: true }],
    ["Content-Length: 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {}, { status: 200, body: "", done: true }],
    [
      "a HEAD answer",
      "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
      { noBody: true },
      { status: 200, body: "", done: true },
    ],
    [
      "an interim 100 skipped",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      {},
      { status: 200, body: "ok", done: true },
    ],
    [
      "a body until close",
      "HTTP/1.0 200 OK\r\n\r\nall of it",
      { close: true },
      { status: 200, body: "all of it", done: false },
    ],
    [
      "repeated equal Content-Length",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
      {},
      { status: 200, body: "ok", done: true },
    ],
  ])("%s", (_what, text, o, want) => {
    expect(feed([enc(text)], o)).toEqual(want);
  });

  test.each([
    ["a status line that is not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", /status line "SSH-2.0-OpenSSH"/],
    ["a header line without a colon", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", /header line "broken"/],
    ["a head over 16 KiB", `HTTP/1.1 200 OK\r\nx: ${"a".repeat(17_000)}`, /head larger than 16384 bytes/],
    ["a chunk size that is not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", /chunk size "zz"/],
    [
      "a chunk size over 2^52",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
      /chunk size/,
    ],
    [
      "a chunk longer than its size",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
      /chunk data longer than its size/,
    ],
    [
      "an endless chunk-size line",
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${"x".repeat(2000)}`,
      /chunk-size line longer than 1024/,
    ],
    [
      "endless trailers",
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${"x: y\r\n".repeat(4000)}`,
      /trailers longer than/,
    ],
    [
      "gzip transfer coding",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      /transfer-encoding "gzip, chunked"/,
    ],
    [
      "two different Content-Lengths",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
      /content-length "2, 3"/,
    ],
    ["a negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", /content-length "-1"/],
    ["a status out of range", "HTTP/1.1 999 Odd\r\n\r\n", /status 999/],
  ])("malformed: %s", (_what, text, reason) => {
    expect(() => feed([enc(text)])).toThrow(reason);
    expect(() => feed([enc(text)])).toThrow(/^malformed HTTP answer: /);
  });

  test.each([
    ["nothing at all", "", /closed without an answer/],
    ["half a head", "HTTP/1.1 200 OK\r\nContent-", /closed inside the answer's head/],
    [
      "a short Content-Length body",
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
      /closed with 7 bytes of the body missing/,
    ],
    [
      "a chunked body without its last chunk",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
      /closed inside a chunked body/,
    ],
  ])("cut short: %s", (_what, text, reason) => {
    expect(() => feed([enc(text)], { close: true })).toThrow(reason);
  });
});
