/**
 * src/shared/pipe-http-client.ts on Linux over a unix socket (Bun.connect opens a named pipe the
 * same way; the Windows tier runs it on one): a scripted server writes answers in pieces, keeps a
 * stream open, or answers garbage, and the client's descriptors come back to baseline.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeRequest } from "../../src/shared/pipe-http-client.ts";
import { until } from "../helpers/until.ts";

type Conn = { head: string; routed: boolean };
type Route = (s: Bun.Socket<Conn>) => void;
const dir = mkdtempSync(join(tmpdir(), "edgeport-pipe-client-"));
const path = join(dir, "engine.sock");
const routes = new Map<string, Route>();
const requests: string[] = [];
let open = 0;
const server = Bun.listen<Conn>({
  unix: path,
  socket: {
    open(s) {
      open++;
      s.data = { head: "", routed: false };
    },
    data(s, d) {
      if (s.data.routed) return;
      s.data.head += Buffer.from(d).toString("latin1");
      if (!s.data.head.includes("\r\n\r\n")) return;
      s.data.routed = true;
      requests.push(s.data.head);
      const target = new URL(s.data.head.split(" ")[1] ?? "/", "http://x").pathname;
      (routes.get(target) ?? ((c) => c.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")))(s);
    },
    close() {
      open--;
    },
    error() {},
  },
});
afterAll(() => {
  server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const fds = () => readdirSync("/proc/self/fd").length;
const url = (p: string) => `http://localhost${p}`;
const CHUNKED = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString();

/** Requests /hold, which answers nothing by itself; returns the request and the server's socket. */
let held: Bun.Socket<Conn> | null = null;
routes.set("/hold", (s) => {
  held = s;
});
async function hold(signal?: AbortSignal): Promise<{ res: Promise<Response>; sock: Bun.Socket<Conn> }> {
  held = null;
  const res = pipeRequest(path, url("/hold"), { signal });
  res.catch(() => undefined);
  await until(() => held !== null, "the server to get the request");
  return { res, sock: held! };
}

describe("pipe-http client", () => {
  test("a GET with query and headers; the answer's status, headers and Content-Length body", async () => {
    routes.set("/v1.41/containers/json", (s) =>
      s.end('HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Length: 15\r\n\r\n[{"Id":"abc"}]\n'),
    );
    const res = await pipeRequest(path, url("/v1.41/containers/json?all=1&filters=%7B%7D"), {
      headers: { "x-test": "1" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("api-version")).toBe("1.43");
    expect(await res.json()).toEqual([{ Id: "abc" }]);
    const req = requests.at(-1)!;
    expect(req).toStartWith("GET /v1.41/containers/json?all=1&filters=%7B%7D HTTP/1.1\r\n");
    expect(req).toContain("\r\nx-test: 1\r\n");
    expect(req).toContain("\r\nconnection: close\r\n");
  });

  test("a chunked stream: an event split inside a chunk and across chunks arrives as it is written", async () => {
    const { res, sock } = await hold();
    sock.write(`${CHUNKED}13\r\n{"Action":"st`); // the head and part of a chunk
    const reader = (await res).body!.getReader();
    const seen: string[] = [text((await reader.read()).value)];
    sock.write(`art"}\n\r\n${chunk('{"Action":"d')}`);
    seen.push(text((await reader.read()).value));
    sock.write(`${chunk('ie"}\n')}0\r\n\r\n`);
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += text(r.value);
    expect(seen[0]).toBe('{"Action":"st');
    expect(seen.join("") + rest).toBe('{"Action":"start"}\n{"Action":"die"}\n');
  });

  test("a stream that stays open is ended by the signal: the read rejects, the connection closes", async () => {
    const before = fds();
    const ac = new AbortController();
    const { res, sock } = await hold(ac.signal);
    sock.write(CHUNKED + chunk('{"Action":"start"}\n'));
    const reader = (await res).body!.getReader();
    expect(text((await reader.read()).value)).toBe('{"Action":"start"}\n');
    const pending = reader.read();
    ac.abort();
    expect(await pending.catch((e: Error) => e.name)).toBe("AbortError");
    await until(() => open === 0, "the server to see the connection close");
    await until(() => fds() <= before, "descriptors back to baseline");
  });

  test("aborted before the head: the request rejects with the signal's reason", async () => {
    const ac = new AbortController();
    const { res } = await hold(ac.signal);
    ac.abort(new Error("gave up"));
    await expect(res).rejects.toThrow("gave up");
    await until(() => open === 0, "the server to see the connection close");
    await expect(pipeRequest(path, url("/hold"), { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i);
  });

  test("a body larger than the stream's buffer arrives whole while read slowly", async () => {
    const big = Buffer.alloc(4 << 20, "x");
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    routes.set("/big", (s) => {
      let rest: Buffer = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`), big]);
      const pump = () => {
        const n = Math.max(s.write(rest), 0);
        rest = rest.subarray(n);
        if (rest.length) setTimeout(pump, 1);
        else s.end();
      };
      pump();
    });
    const res = await pipeRequest(path, url("/big"));
    const h = createHash("sha256");
    let n = 0;
    for await (const c of res.body!) {
      h.update(c);
      n += c.length;
      if (n < 1 << 20) await Bun.sleep(1);
    }
    expect(n).toBe(big.length);
    expect(h.digest("hex")).toBe(createHash("sha256").update(big).digest("hex"));
  });

  test("nobody listening: the connect error's code", async () => {
    const err = await pipeRequest(join(dir, "nobody.sock"), url("/")).catch((e) => e);
    expect((err as { code?: string }).code).toBe("ENOENT");
  });

  test.each([
    ["a head that is not HTTP", "SSH-2.0-OpenSSH_9\r\n\r\n", /malformed HTTP answer: status line "SSH-2.0-OpenSSH_9"/],
    ["a close without an answer", "", /^the connection closed without an answer$/],
    ["an endless head", `HTTP/1.1 200 OK\r\nx: ${"a".repeat(20_000)}`, /head larger than 16384 bytes/],
  ])("malformed: %s rejects the request with E_PROTOCOL", async (_what, answer, reason) => {
    routes.set("/bad", (s) => s.end(answer));
    const err = await pipeRequest(path, url("/bad")).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe("E_PROTOCOL");
    expect((err as Error).message).toMatch(reason);
  });

  test.each([
    ["a bad chunk size", CHUNKED, `${chunk("ok")}zz\r\n`, /chunk size "zz"/],
    ["a chunked body cut short", CHUNKED, chunk("ok"), /closed inside a chunked body/],
    [
      "a Content-Length body cut short",
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
      "ok",
      /8 bytes of the body missing/,
    ],
  ])("malformed: %s ends the body's stream with E_PROTOCOL", async (_what, head, rest, reason) => {
    const held = await hold();
    held.sock.write(head); // the head alone first: the request resolves
    const res = await held.res;
    expect(res.status).toBe(200);
    held.sock.end(rest);
    const err = await res.text().catch((e) => e);
    expect((err as { code?: string }).code).toBe("E_PROTOCOL");
    expect((err as Error).message).toMatch(reason);
  });

  test("malformed: head and bad body in one read rejects the request itself", async () => {
    routes.set("/bad", (s) => s.end(`${CHUNKED}${chunk("ok")}zz\r\n`));
    await expect(pipeRequest(path, url("/bad"))).rejects.toThrow(/chunk size "zz"/);
  });

  test("200 aborted streams and malformed answers leave no descriptor behind", async () => {
    routes.set("/bad", (s) => s.end(`${CHUNKED}${chunk("ok")}zz\r\n`));
    routes.set("/open", (s) => void s.write(CHUNKED + chunk("{}\n")));
    const before = fds();
    for (let i = 0; i < 100; i++) {
      const ac = new AbortController();
      const res = await pipeRequest(path, url("/open"), { signal: ac.signal });
      const r = res.body!.getReader();
      await r.read();
      ac.abort();
      await r.read().catch(() => undefined);
      await pipeRequest(path, url("/bad"))
        .then((r) => r.text())
        .catch(() => undefined);
    }
    await until(() => open === 0, "the server to see every connection close");
    await until(() => fds() <= before, "descriptors back to baseline");
  });
});
