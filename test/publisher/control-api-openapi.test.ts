/**
 * The control API's OpenAPI document: generated from the route table and the zod schemas, served
 * at GET /v1/openapi.json, committed as docs/openapi.json (this test keeps it from going stale,
 * `bun scripts/gen-openapi.ts` rewrites it), and true of a real daemon's replies.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createConsola } from "consola";
import type { z } from "zod";
import { OPENAPI_PATH, openApiText } from "../../scripts/gen-openapi.ts";
import { ROUTES } from "../../src/publisher/control-api/routes.ts";
import { createControlApp } from "../../src/publisher/control-api.ts";
import { createDaemon } from "../../src/publisher/daemon.ts";
import type { RelayClient } from "../../src/relay/host/relay-client.ts";
import { fakeListeners } from "./fake-listeners.ts";

const relay = { description: "unix:///fake/pipe.sock", current: null, counters: () => ({}) } as unknown as RelayClient;
const realDaemon = () =>
  createDaemon({
    engine: null,
    relay,
    binding: "local-default",
    resyncMs: 60_000,
    pipeWaitMs: 1000,
    udp: { idleMs: 120_000, maxFlows: 4096 },
    log: createConsola({ level: -999 }),
    openListener: fakeListeners().open,
  });

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  components: Record<string, Record<string, unknown>>;
};

test("docs/openapi.json is what the API serves at GET /v1/openapi.json (run bun scripts/gen-openapi.ts after a change)", async () => {
  const r = await createControlApp(realDaemon()).request("/v1/openapi.json");
  expect(r.status).toBe(200);
  const served = await r.json();
  expect(`${JSON.stringify(served, null, 2)}\n`).toBe(openApiText());
  expect(readFileSync(OPENAPI_PATH, "utf8")).toBe(openApiText());
});

test("the document is OpenAPI 3.1 with every route of the API, and every $ref resolves", () => {
  const doc = JSON.parse(openApiText()) as Doc;
  expect(doc.openapi).toBe("3.1.0");
  expect(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`))).toEqual(
    ROUTES.map((r) => `${r.method} ${r.path}`),
  );
  const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/(\w+)\/(\w+)"/g)];
  expect(refs.length).toBeGreaterThan(20);
  for (const [, kind, name] of refs)
    expect([kind, name, doc.components[kind!]?.[name!] !== undefined]).toEqual([kind, name, true]);
  const body = doc.components.schemas!.PublishBody as { required: string[]; additionalProperties: boolean };
  expect([body.required, body.additionalProperties]).toEqual([["spec"], false]);
});

test("each documented route answers its method, and its other methods are 405 naming the documented ones", async () => {
  const app = createControlApp(realDaemon());
  const doc = JSON.parse(openApiText()) as Doc;
  for (const r of ROUTES) {
    const path = r.path.replace("{id}", "0123456789ab");
    const res = await app.request(path, {
      method: r.method.toUpperCase(),
      ...(r.method === "post"
        ? { body: '{"spec":"18090:10.0.0.5:80"}', headers: { "content-type": "application/json" } }
        : {}),
    });
    expect([r.method, r.path, res.status in r.replies]).toEqual([r.method, r.path, true]);
    const allow = (await app.request(path, { method: "PATCH" })).headers.get("allow")!.split(", ");
    const documented = Object.keys(doc.paths[r.path]!).map((m) => m.toUpperCase());
    expect(allow.filter((m) => m !== "HEAD" && m !== "OPTIONS").sort()).toEqual(documented.sort());
  }
});

/** parses a reply with its documented schema: the parse keeps every field (z.object drops unknown ones) */
function conforms(schema: z.ZodType | undefined, body: unknown): void {
  expect(schema).toBeDefined();
  expect(schema!.parse(body)).toEqual(body as never);
}

test("a real daemon's replies are exactly what the document says (no field missing, none undocumented)", async () => {
  const d = realDaemon();
  const app = createControlApp(d, { pid: 1234 });
  const reply = (id: string, status: number) =>
    (ROUTES.find((r) => r.operationId === id)!.replies as Record<number, { schema?: z.ZodType }>)[status]?.schema;
  const post = (spec: string, proxyProtocol?: boolean) =>
    app.request("/v1/ports", {
      method: "POST",
      body: JSON.stringify({ spec, ...(proxyProtocol ? { proxyProtocol } : {}) }),
      headers: { "content-type": "application/json" },
    });
  const tcp = await post("18091:10.0.0.5:80", true);
  conforms(reply("publishPort", 201), await tcp.json());
  const udp = await post("127.0.0.1:18092:10.0.0.5:53/udp");
  const { id } = (await udp.json()) as { id: string };
  conforms(reply("publishPort", 200), await (await post("127.0.0.1:18092:10.0.0.5:53/udp")).json());
  const get = async (path: string, op: string, status = 200) => {
    const r = await app.request(path);
    expect([path, r.status]).toEqual([path, status]);
    conforms(reply(op, status), await r.json());
  };
  await get("/v1/ports", "listPorts");
  await get(`/v1/ports/${id}`, "getPort");
  await get("/v1/state", "getState");
  await get("/v1/debug/state", "getDebugState");
  await get("/v1/health", "getHealth", 503);
  await get("/v1/nope", "getPort", 404);
  const del = await app.request(`/v1/ports/${id}`, { method: "DELETE" });
  conforms(reply("unpublishPort", 200), await del.json());
  expect(((await (await app.request("/v1/state")).json()) as { fds?: unknown }).fds).toBeDefined();
});
