/**
 * The control API follows HTTP's conventions (issue 20, item 8), on a real daemon (no engine, the
 * listener factory injected): 415 for a body that is not JSON, 405 with Allow, GET /v1/ports/{id},
 * Location on 201, 404 for an unknown id, and validation errors that list every issue in words,
 * all in one error shape. The real binary's socket is tested in test/e2e/api.test.ts.
 */
import { expect, test } from "bun:test";
import { createConsola } from "consola";
import { z } from "zod";
import { createControlApp } from "../../src/publisher/control-api.ts";
import { createDaemon, type Daemon, type PortState } from "../../src/publisher/daemon.ts";
import type { RelayClient } from "../../src/relay/host/relay-client.ts";
import { fakeListeners } from "./fake-listeners.ts";

const relay = { description: "unix:///fake/pipe.sock", current: null, counters: () => ({}) } as unknown as RelayClient;

function realDaemon(): Daemon {
  return createDaemon({
    engine: null,
    relay,
    binding: "local-default",
    resyncMs: 60_000,
    pipeWaitMs: 1000,
    udp: { idleMs: 120_000, maxFlows: 4096 },
    log: createConsola({ level: -999 }),
    openListener: fakeListeners().open,
  });
}

/** The one error shape: `{code, message}`, plus `issues` for a body's problems; nothing else. */
const ErrorShape = z.strictObject({
  code: z.string().regex(/^E_[A-Z_]+$/),
  message: z.string().min(1),
  issues: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});
async function errorOf(r: Response): Promise<z.infer<typeof ErrorShape>> {
  expect(r.headers.get("content-type")).toMatch(/^application\/json/);
  return ErrorShape.parse(await r.json());
}

const JSON_TYPE = { "content-type": "application/json" };
const publish = (
  app: ReturnType<typeof createControlApp>,
  body: unknown,
  headers: Record<string, string> = JSON_TYPE,
) =>
  app.request("/v1/ports", { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), headers });

test("415 for a body without Content-Type: application/json; nothing is published", async () => {
  const d = realDaemon();
  const app = createControlApp(d);
  const body = JSON.stringify({ spec: "18080:10.0.0.5:80" });
  for (const headers of [
    {} as Record<string, string>,
    { "content-type": "text/plain" },
    { "content-type": "application/x-www-form-urlencoded" },
    { "content-type": "application/jsonx" },
  ]) {
    const r = await publish(app, body, headers);
    expect([JSON.stringify(headers), r.status]).toEqual([JSON.stringify(headers), 415]);
    expect(r.headers.get("accept")).toBe("application/json");
    const e = await errorOf(r);
    expect(e.code).toBe("E_UNSUPPORTED_MEDIA_TYPE");
    expect(e.message).toMatch(/^the body must be JSON sent with Content-Type: application\/json \(got /);
  }
  expect(d.state().ports).toEqual([]);
  // the media type in any case, with parameters
  expect((await publish(app, body, { "content-type": "Application/JSON; charset=utf-8" })).status).toBe(201);
});

test("an unparsable body with the right type is 400 naming the JSON error", async () => {
  const app = createControlApp(realDaemon());
  const bad = await errorOf(await publish(app, '{"spec": "18080:10.0.0.5:80"'));
  expect(bad).toEqual({
    code: "E_BAD_ARG",
    message: expect.stringMatching(/^the body is not valid JSON: JSON Parse error: /),
  });
  expect((await errorOf(await publish(app, ""))).message).toMatch(/^the body is not valid JSON: the body is empty; /);
});

test.each([
  ["PUT", "/v1/ports", "GET, HEAD, POST, OPTIONS"],
  ["PATCH", "/v1/ports", "GET, HEAD, POST, OPTIONS"],
  ["POST", "/v1/ports/abc", "GET, HEAD, DELETE, OPTIONS"],
  ["PUT", "/v1/ports/abc", "GET, HEAD, DELETE, OPTIONS"],
  ["DELETE", "/v1/health", "GET, HEAD, OPTIONS"],
  ["POST", "/v1/state", "GET, HEAD, OPTIONS"],
  ["DELETE", "/v1/openapi.json", "GET, HEAD, OPTIONS"],
  ["POST", "/metrics", "GET, HEAD, OPTIONS"],
  ["POST", "/_ping", "GET, HEAD, OPTIONS"],
])("%s %s is 405 with Allow: %s", async (method, path, allow) => {
  const r = await createControlApp(realDaemon()).request(path, { method });
  expect(r.status).toBe(405);
  expect(r.headers.get("allow")).toBe(allow);
  expect(await errorOf(r)).toEqual({
    code: "E_METHOD_NOT_ALLOWED",
    message: `${method} ${path}: this path takes ${allow}`,
  });
});

test("OPTIONS says the methods (204 with Allow); unknown paths stay 404 with a JSON error, whatever the method", async () => {
  const app = createControlApp(realDaemon());
  const o = await app.request("/v1/ports", { method: "OPTIONS" });
  expect([o.status, o.headers.get("allow")]).toEqual([204, "GET, HEAD, POST, OPTIONS"]);
  for (const [method, path] of [
    ["GET", "/v1/nope"],
    ["PUT", "/v1/nope"],
    ["GET", "/v1/ports/a/b"],
    ["DELETE", "/v2/ports/abc"],
  ] as const) {
    const r = await app.request(path, { method });
    expect([method, path, r.status, r.headers.get("allow")]).toEqual([method, path, 404, null]);
    expect(await errorOf(r)).toEqual({ code: "E_NOT_FOUND", message: `no such endpoint: ${method} ${path}` });
  }
});

test("POST 201 has Location: /v1/ports/{id}; GET there is that id's rows (both loopbacks); 200 again has none; an unknown id is 404", async () => {
  const d = realDaemon();
  const app = createControlApp(d);
  const r = await publish(app, { spec: "18080:10.0.0.5:80" });
  expect(r.status).toBe(201);
  const { id } = (await r.json()) as { id: string };
  expect(r.headers.get("location")).toBe(`/v1/ports/${id}`);
  const entry = await app.request(r.headers.get("location")!);
  expect(entry.status).toBe(200);
  const rows = d.state().ports.filter((p) => p.id === id);
  expect(rows.map((p) => p.host).sort()).toEqual(["127.0.0.1:18080", "[::1]:18080"]);
  expect(await entry.json()).toEqual({ id, ports: rows });
  const again = await publish(app, { spec: "18080:10.0.0.5:80" });
  expect([again.status, again.headers.get("location")]).toEqual([200, null]);
  const unknown = await app.request("/v1/ports/0123456789ab");
  expect(unknown.status).toBe(404);
  expect(await errorOf(unknown)).toEqual({
    code: "E_NOT_FOUND",
    message: 'no port has the id "0123456789ab" (GET /v1/ports lists them)',
  });
});

test("Location percent-encodes an id, and GET and DELETE of it decode it once (a % in an id survives)", async () => {
  const odd = "a b/c%25d?e#f:[::1]";
  const row = { id: odd, key: "tcp:127.0.0.1:1", host: "127.0.0.1:1" } as PortState;
  const removed: string[] = [];
  const app = createControlApp({
    state: () => ({ ...realDaemon().state(), ports: [row] }),
    publish: async () => ({ id: odd, created: true, ports: [row] }),
    unpublish: async (id) => {
      removed.push(id);
      return id === odd;
    },
  });
  const r = await publish(app, { spec: "1:10.0.0.5:80" });
  const location = r.headers.get("location")!;
  expect(location).toBe(`/v1/ports/${encodeURIComponent(odd)}`);
  expect(await (await app.request(location)).json()).toEqual({ id: odd, ports: [row] });
  const del = await app.request(location, { method: "DELETE" });
  expect([del.status, await del.json()]).toEqual([200, { id: odd, removed: true }]);
  expect(removed).toEqual([odd]);
});

test("DELETE of an unknown id (or spec) is 404 with a JSON error; of a published one 200, then 404", async () => {
  const app = createControlApp(realDaemon());
  const r = await app.request("/v1/ports/0123456789ab", { method: "DELETE" });
  expect(r.status).toBe(404);
  expect(await errorOf(r)).toEqual({
    code: "E_NOT_FOUND",
    message: 'nothing published by hand has the id or spec "0123456789ab" (see GET /v1/ports)',
  });
  const spec = "127.0.0.1:18081:10.0.0.5:80";
  expect((await app.request(`/v1/ports/${encodeURIComponent(spec)}`, { method: "DELETE" })).status).toBe(404);
  const { id } = (await (await publish(app, { spec })).json()) as { id: string };
  const del = await app.request(`/v1/ports/${id}`, { method: "DELETE" });
  expect([del.status, await del.json()]).toEqual([200, { id, removed: true }]);
  expect((await app.request(`/v1/ports/${id}`, { method: "DELETE" })).status).toBe(404);
});

test("validation errors list every issue with its path, in words (not zod's text), in one message too", async () => {
  const app = createControlApp(realDaemon());
  const e = await errorOf(await publish(app, { spec: 8080, proxyProtocol: "yes", hostIp: "0.0.0.0", x: 1 }));
  expect(e.code).toBe("E_BAD_ARG");
  expect(e.issues).toEqual([
    { path: "spec", message: "expected a string, got a number" },
    { path: "proxyProtocol", message: "expected true or false, got a string" },
    { path: "hostIp", message: 'unknown key "hostIp"' },
    { path: "x", message: 'unknown key "x"' },
  ]);
  expect(e.message).toStartWith(
    'bad request: spec: expected a string, got a number; proxyProtocol: expected true or false, got a string; unknown key "hostIp"; unknown key "x"; expected {"spec": ',
  );
  expect(e.message).not.toMatch(/Invalid input|received|Unrecognized/);
  const cases: [unknown, { path: string; message: string }[]][] = [
    [{}, [{ path: "spec", message: "missing (expected a string)" }]],
    [{ spec: "" }, [{ path: "spec", message: "must not be empty" }]],
    [{ spec: "1".repeat(401) }, [{ path: "spec", message: "must be at most 400 characters" }]],
    [[1, 2], [{ path: "", message: "expected a JSON object, got an array" }]],
    [null, [{ path: "", message: "expected a JSON object, got null" }]],
    [{ spec: "1:2:3", proxyProtocol: null }, [{ path: "proxyProtocol", message: "expected true or false, got null" }]],
  ];
  for (const [body, issues] of cases)
    expect([body, (await errorOf(await publish(app, body))).issues]).toEqual([body, issues]);
  // a spec the daemon cannot parse is an issue of the field "spec"
  const spec = await errorOf(await publish(app, { spec: "8080:1.2.3.4:80x" }));
  expect(spec).toEqual({
    code: "E_BAD_SPEC",
    message: expect.stringContaining('target port "80x" is not a number 1-65535'),
    issues: [{ path: "spec", message: spec.message }],
  });
});

test("every error answer has the one shape: 400, 401, 403, 404, 405, 409, 413, 415", async () => {
  const d = realDaemon();
  const app = createControlApp(d);
  await publish(app, { spec: "127.0.0.1:18082:10.0.0.5:80" });
  const tcp = createControlApp(d, { token: "s3cret-token-0123456789", host: "127.0.0.1", port: 7777 });
  const answers = [
    await publish(app, "{"),
    await tcp.request("http://127.0.0.1:7777/v1/ports", { headers: { host: "127.0.0.1:7777" } }),
    await tcp.request("http://127.0.0.1:7777/v1/ports", { headers: { host: "evil.example" } }),
    await app.request("/v1/nope"),
    await app.request("/v1/ports", { method: "PUT" }),
    await publish(app, { spec: "127.0.0.1:18082:10.0.0.6:80" }),
    await publish(app, JSON.stringify({ spec: "x".repeat(70_000) })),
    await publish(app, "{}", { "content-type": "text/plain" }),
  ];
  expect(answers.map((r) => r.status)).toEqual([400, 401, 403, 404, 405, 409, 413, 415]);
  for (const r of answers) await errorOf(r);
});
