import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createControlApp,
  MAX_BODY,
  metricsText,
  parseApiUrl,
  serveControlApi,
} from "../../src/publisher/control-api.ts";
import type { DaemonState, PortState } from "../../src/publisher/daemon.ts";
import { EdgeportError } from "../../src/shared/errors.ts";

const port: PortState = {
  key: "tcp:127.0.0.1:8080",
  id: "c-0123456789ab",
  proto: "tcp",
  host: "127.0.0.1:8080",
  target: "172.17.0.2:80",
  container: "web",
  status: "published",
  source: { kind: "container", containerId: "0123456789abcdef", containerName: "web" },
  connections: 1,
  connectionsTotal: 7,
  bytesIn: 100,
  bytesOut: 2000,
};
const state: DaemonState = {
  engine: { url: "unix:///var/run/docker.sock", connected: true },
  pipe: { url: "unix:///tmp/fwd.sock", up: true },
  binding: "local-default",
  udp: { idleMs: 120000, maxFlows: 4096 },
  containers: 1,
  ports: [port],
};
/** the API's behaviour on its own; the real daemon behind it is tested in test/e2e/api.test.ts */
const daemon = {
  state: () => state,
  publish: async (spec: string) => {
    if (spec === "in-use") throw new EdgeportError("E_PORT_IN_USE", "cannot listen on 127.0.0.1:1: in use");
    if (!spec.includes(":") && spec !== "again") throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}"`);
    return { id: "abc", created: spec !== "again", ports: [] };
  },
  unpublish: async (id: string) => id === "abc",
};

test("routes: ports, publish (201 / 200 when it existed), unpublish, health, unknown paths; errors are {code, message} with 4xx", async () => {
  const app = createControlApp(daemon);
  expect(await (await app.request("/v1/ports")).json()).toEqual([port]);
  const post = (body: string) =>
    app.request("/v1/ports", { method: "POST", body, headers: { "content-type": "application/json" } });
  expect((await post('{"spec":"8080:1.2.3.4:80"}')).status).toBe(201);
  expect((await post('{"spec":"again"}')).status).toBe(200);
  const bad = await post('{"spec":"nope"}');
  expect(bad.status).toBe(400);
  expect(await bad.json()).toEqual({
    code: "E_BAD_SPEC",
    message: 'bad spec "nope"',
    issues: [{ path: "spec", message: 'bad spec "nope"' }],
  });
  const unknown = await post('{"spec":"8080:1.2.3.4:80","hostIp":"0.0.0.0"}');
  expect(unknown.status).toBe(400);
  expect(((await unknown.json()) as { message: string }).message).toMatch(/unknown key "hostIp"/);
  expect((await post("not json")).status).toBe(400);
  expect((await post('{"spec":"in-use"}')).status).toBe(409);
  expect(await (await app.request("/v1/ports/abc", { method: "DELETE" })).json()).toEqual({ id: "abc", removed: true });
  const gone = await app.request("/v1/ports/abc2", { method: "DELETE" });
  expect(gone.status).toBe(404);
  expect(((await gone.json()) as { code: string }).code).toBe("E_NOT_FOUND");
  expect((await app.request("/v1/ports/c-0123456789ab", { method: "DELETE" })).status).toBe(400);
  expect(await (await app.request("/v1/health")).json()).toEqual({ ok: true, pipe: true, engine: true });
  const r = await app.request("/v1/nope", { method: "POST" });
  expect(r.status).toBe(404);
  expect(await r.json()).toEqual({ message: "no such endpoint: POST /v1/nope", code: "E_NOT_FOUND" });
  const dbg = (await (await app.request("/v1/debug/state")).json()) as { events: unknown[]; pipe: unknown };
  expect(Array.isArray(dbg.events)).toBe(true);
});

test("a token-protected (TCP) API refuses a missing or wrong token, a foreign Host and a foreign Origin", async () => {
  const app = createControlApp(daemon, { token: "s3cret-token-0123456789", host: "127.0.0.1", port: 7777 });
  const get = (headers: Record<string, string>) => app.request("http://127.0.0.1:7777/v1/ports", { headers });
  const auth = { authorization: "Bearer s3cret-token-0123456789" };
  expect((await get({ host: "127.0.0.1:7777" })).status).toBe(401);
  expect((await get({ host: "127.0.0.1:7777", authorization: "Bearer wrong" })).status).toBe(401);
  expect((await get({ host: "evil.example:7777", ...auth })).status).toBe(403);
  expect((await get({ host: "127.0.0.1:7777", origin: "http://evil.example", ...auth })).status).toBe(403);
  expect((await get({ host: "127.0.0.1:7777", ...auth })).status).toBe(200);
  expect((await get({ host: "localhost:7777", origin: "http://localhost:7777", ...auth })).status).toBe(200);
});

test("API URLs: unix, npipe, loopback TCP only", () => {
  expect(parseApiUrl("unix:///run/x.sock")).toEqual({ kind: "unix", path: "/run/x.sock" });
  expect(parseApiUrl("tcp://127.0.0.1:2999")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 2999 });
  expect(parseApiUrl("npipe:////./pipe/edgeport")).toEqual({ kind: "npipe", path: "\\\\.\\pipe\\edgeport" });
  expect(() => parseApiUrl("tcp://0.0.0.0:2999")).toThrow(/loopback only/);
  expect(() => parseApiUrl("http://x")).toThrow(/is not one of/);
});

test("/metrics is Prometheus text: HELP and TYPE for every metric, escaped labels, numeric values", () => {
  const text = metricsText({ ...state, ports: [...state.ports, { ...port, key: 'tcp:"odd"', status: "failed" }] });
  const lines = text.trim().split("\n");
  for (const l of lines)
    expect(l).toMatch(
      /^(# (HELP|TYPE) (edgeport|process)_\w+ .+|(edgeport|process)_\w+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? -?\d+(\.\d+)?(e[+-]?\d+)?)$/,
    );
  expect(text).toContain(
    'edgeport_bytes_total{proto="tcp",address="127.0.0.1",port="8080",source="container",container="web",direction="out"} 2000',
  );
  expect(text).toContain('edgeport_ports{state="failed"} 1');
});

test("the socket lives in a 0700 directory and is not reachable by other users", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgeport-control-"));
  const path = join(dir, "sub", "control.sock");
  const api = serveControlApi({ kind: "unix", path }, daemon);
  try {
    expect(statSync(join(dir, "sub")).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o077).toBe(0);
    const r = await fetch("http://localhost/v1/ports", { unix: path } as RequestInit);
    expect(((await r.json()) as PortState[])[0]!.id).toBe("c-0123456789ab");
  } finally {
    api.close();
    expect(existsSync(path)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a body over 64 KiB is 413, with or without a content-length, and the daemon never sees it", async () => {
  let seen = 0;
  const app = createControlApp({
    ...daemon,
    publish: async (s) => {
      seen++;
      return daemon.publish(s);
    },
  });
  const big = JSON.stringify({ spec: "8080:1.2.3.4:80", pad: "x".repeat(MAX_BODY) });
  const post = (body: string) =>
    app.request("/v1/ports", { method: "POST", body, headers: { "content-type": "application/json" } });
  const r = await post(big);
  expect(r.status).toBe(413);
  expect(await r.json()).toEqual({ code: "E_TOO_LARGE", message: "the request body is over 65536 bytes" });
  const chunked = new ReadableStream({
    start(ctl) {
      for (let i = 0; i < 40; i++) ctl.enqueue(new TextEncoder().encode("x".repeat(4096)));
      ctl.close();
    },
  });
  expect(
    (
      await app.request("/v1/ports", {
        method: "POST",
        body: chunked,
        duplex: "half",
        headers: { "content-type": "application/json" },
      } as RequestInit)
    ).status,
  ).toBe(413);
  expect(seen).toBe(0);
  expect((await post('{"spec":"8080:1.2.3.4:80"}')).status).toBe(201);
});

test("a malformed percent-escape in the path is 400 naming it, not 500", async () => {
  const app = createControlApp(daemon);
  for (const path of ["/v1/ports/%E0%A4%A", "/v1/ports/%", "/v1/ports/abc%zz"]) {
    const r = await app.request(path, { method: "DELETE" });
    expect([path, r.status]).toEqual([path, 400]);
    expect(((await r.json()) as { code: string; message: string }).message).toMatch(/malformed percent-escape/);
  }
  const spec = await app.request(`/v1/ports/${encodeURIComponent("8080:1.2.3.4:80")}`, { method: "DELETE" });
  expect(spec.status).toBe(404);
  expect(((await spec.json()) as { message: string }).message).toContain('"8080:1.2.3.4:80"');
});

test.each([
  ["E_PORT_IN_USE", 409],
  ["E_ADDR_NOT_AVAILABLE", 409],
  ["E_PERMISSION", 409],
  ["E_CONFLICT", 409],
  ["E_BAD_SPEC", 400],
  ["E_BAD_ADDRESS", 400],
  ["E_BAD_CIDR", 400],
  ["E_UNSUPPORTED", 400],
  ["E_FD_LIMIT", 503],
  ["E_DIAL", 503],
  ["E_PIPE_DOWN", 503],
] as const)("a publish that fails with %s is %d as docs/operations.md says", async (code, status) => {
  const app = createControlApp({
    ...daemon,
    publish: async () => {
      throw new EdgeportError(code, "because");
    },
  });
  const r = await app.request("/v1/ports", {
    method: "POST",
    body: '{"spec":"8080:1.2.3.4:80"}',
    headers: { "content-type": "application/json" },
  });
  expect(r.status).toBe(status);
  // a spec the daemon refuses is also an issue of the field "spec"
  const issues = code === "E_BAD_SPEC" ? { issues: [{ path: "spec", message: "because" }] } : {};
  expect(await r.json()).toEqual({ code, message: "because", ...issues });
});

test("the Authorization scheme is case-insensitive; the token is not", async () => {
  const app = createControlApp(daemon, { token: "s3cret-token-0123456789", host: "127.0.0.1", port: 7777 });
  const get = (authorization: string) =>
    app.request("http://127.0.0.1:7777/v1/ports", { headers: { host: "127.0.0.1:7777", authorization } });
  for (const a of [
    "Bearer s3cret-token-0123456789",
    "bearer s3cret-token-0123456789",
    "BEARER s3cret-token-0123456789",
  ])
    expect([a, (await get(a)).status]).toEqual([a, 200]);
  for (const a of [
    "Basic s3cret-token-0123456789",
    "Bearer S3CRET-token-0123456789",
    "Bearers3cret-token-0123456789",
    "Bearer ",
  ])
    expect([a, (await get(a)).status]).toEqual([a, 401]);
});
