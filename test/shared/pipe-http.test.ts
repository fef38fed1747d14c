/**
 * src/shared/pipe-http.ts on Linux: the same code Windows runs on a named pipe, here on a unix
 * socket (Bun.listen and Bun.connect take both the same way). The Windows tier runs it on a pipe.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeFetch, servePipeHttp } from "../../src/shared/pipe-http.ts";
import { until } from "../helpers/until.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-pipe-http-"));
const path = join(dir, "api.sock");
const seen: { method: string; url: string; auth: string | null; body: string }[] = [];
const server = servePipeHttp(path, async (req) => {
  seen.push({ method: req.method, url: req.url, auth: req.headers.get("authorization"), body: await req.text() });
  if (req.url.endsWith("/big")) return new Response("x".repeat(3 << 20));
  return Response.json({ ok: true, path: new URL(req.url).pathname }, { status: 201, headers: { "x-test": "1" } });
});
afterAll(() => {
  server.stop();
  rmSync(dir, { recursive: true, force: true });
});

const fds = () => readdirSync("/proc/self/fd").length;

/** Sends raw bytes, returns everything the server answered before it closed. */
async function raw(bytes: string | Uint8Array): Promise<string> {
  const chunks: Buffer[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  const s = await Bun.connect({
    unix: path,
    socket: { data: (_s, d) => void chunks.push(Buffer.from(d)), close: () => resolve(), error() {} },
  });
  s.write(bytes);
  await Promise.race([promise, Bun.sleep(5000).then(() => s.terminate())]);
  return Buffer.concat(chunks).toString("latin1");
}

describe("pipe-http", () => {
  test("a POST with a body and headers, and the answer's status, headers and body", async () => {
    const res = await pipeFetch(path, "http://localhost/v1/ports?x=1", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer t" },
      body: JSON.stringify({ spec: "8080:10.0.0.1:80" }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("x-test")).toBe("1");
    expect(await res.json()).toEqual({ ok: true, path: "/v1/ports" });
    expect(seen.at(-1)).toEqual({
      method: "POST",
      url: "http://localhost/v1/ports?x=1",
      auth: "Bearer t",
      body: '{"spec":"8080:10.0.0.1:80"}',
    });
  });

  test("an answer larger than a socket buffer arrives whole", async () => {
    const res = await pipeFetch(path, "http://localhost/big", {});
    expect((await res.text()).length).toBe(3 << 20);
  });

  test("nobody listening: the connect error's code", async () => {
    const err = await pipeFetch(join(dir, "nobody.sock"), "http://localhost/", {}).catch((e) => e);
    expect((err as { code?: string }).code).toBe("ENOENT");
  });

  test.each([
    ["a head without end, over 16 KiB", `GET / HTTP/1.1\r\nx: ${"a".repeat(20_000)}`, /header too large/],
    ["a content-length over 1 MiB", "POST / HTTP/1.1\r\ncontent-length: 9999999\r\n\r\n", /bad content-length/],
    ["a content-length that is not a number", "POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n", /bad content-length/],
  ])("hostile input: %s gets a 400 and the connection closes", async (_what, bytes, reason) => {
    const answer = await raw(bytes);
    expect(answer).toStartWith("HTTP/1.1 400");
    expect(answer).toMatch(reason);
  });

  test("a request that stops half-way is closed after the idle timeout", async () => {
    const quick = servePipeHttp(join(dir, "idle.sock"), () => new Response("no"), 1);
    const { promise: closed, resolve } = Promise.withResolvers<void>();
    const s = await Bun.connect({ unix: join(dir, "idle.sock"), socket: { data() {}, close: () => resolve() } });
    s.write("POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\nab");
    const t0 = performance.now();
    await closed;
    expect(performance.now() - t0).toBeGreaterThan(500);
    quick.stop();
  });

  test("200 hostile and half-sent requests leave no descriptor behind", async () => {
    const before = fds();
    for (let i = 0; i < 100; i++) await raw(`GET / HTTP/1.1\r\nx: ${"a".repeat(17_000)}`);
    const half = await Promise.all(
      Array.from({ length: 100 }, () =>
        Bun.connect({ unix: path, socket: { data() {}, error() {} } }).then((s) => {
          s.write("POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\nab");
          return s;
        }),
      ),
    );
    for (const s of half) s.terminate();
    await until(() => fds() <= before + 2, "descriptors back to baseline");
  });
});
