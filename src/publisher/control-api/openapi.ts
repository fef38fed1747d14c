/**
 * The control API's OpenAPI 3.1 document, generated from the route table and the same zod schemas
 * the API checks its input with (zod's own JSON Schema output: no extra dependency). Served at
 * GET /v1/openapi.json; docs/openapi.json is this document, and a test keeps the two equal. Pure.
 */
import { z } from "zod";
import { API_SCHEMAS } from "../api-schemas.ts";
import { allowedMethods, type Reply, ROUTES, type Route } from "./routes.ts";

const COMPONENTS = "#/components/schemas/";

const DESCRIPTION = [
  'The control API of `edgeport run` (docs/operations.md, "Control API").',
  "It listens on a unix socket (default), a Windows named pipe, or `tcp://127.0.0.1:PORT`. On a socket",
  "or pipe its permissions are the guard (no token); over TCP every request needs",
  "`Authorization: Bearer <token from --api-token-file>` (else 401) and a `Host` (and `Origin`, when",
  "sent) naming that loopback address (else 403).",
  "Every error is `{code, message}` (plus `issues: [{path, message}]` for a request body's problems).",
  "A known path with another method is 405 with `Allow`; an unknown path is 404.",
].join("\n");

function idOf(schema: z.ZodType): string {
  const id = z.globalRegistry.get(schema)?.id;
  if (!id) throw new Error("every schema of a route needs an id (src/publisher/api-schemas.ts)");
  return id;
}

/** components.schemas: the JSON Schema (draft 2020-12, OpenAPI 3.1's dialect) of every API schema. */
function componentSchemas(): Record<string, unknown> {
  const all = z.toJSONSchema(z.globalRegistry, {
    target: "draft-2020-12",
    // replies may gain fields: only the request body (a strict object) forbids others
    io: "input",
    uri: (id) => `${COMPONENTS}${id}`,
  }).schemas as Record<string, Record<string, unknown>>;
  const out: Record<string, unknown> = {};
  for (const s of API_SCHEMAS) {
    const { $schema: _s, $id: _i, ...rest } = all[idOf(s)]!;
    out[idOf(s)] = rest;
  }
  return out;
}

const ref = (schema: z.ZodType) => ({ $ref: `${COMPONENTS}${idOf(schema)}` });

function reply(r: Reply): Record<string, unknown> {
  const content = r.schema
    ? { "application/json": { schema: ref(r.schema) } }
    : { [r.text ?? "text/plain"]: { schema: { type: "string" } } };
  const headers = r.headers
    ? Object.fromEntries(Object.entries(r.headers).map(([k, d]) => [k, { description: d, schema: { type: "string" } }]))
    : undefined;
  return { description: r.description, ...(headers ? { headers } : {}), content };
}

function operation(r: Route): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const [status, x] of Object.entries(r.replies)) responses[status] = reply(x);
  responses["401"] = { $ref: "#/components/responses/Unauthorized" };
  responses["403"] ??= { $ref: "#/components/responses/Forbidden" };
  responses["405"] = { $ref: "#/components/responses/MethodNotAllowed" };
  return {
    operationId: r.operationId,
    summary: r.summary,
    ...(r.description ? { description: r.description } : {}),
    ...(r.path.includes("{id}")
      ? { parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }] }
      : {}),
    ...(r.body ? { requestBody: { required: true, content: { "application/json": { schema: ref(r.body) } } } } : {}),
    responses,
  };
}

const errorReply = (description: string, headers?: Record<string, unknown>) => ({
  description,
  ...(headers ? { headers } : {}),
  content: { "application/json": { schema: { $ref: `${COMPONENTS}Error` } } },
});

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) paths[r.path] = { ...paths[r.path], [r.method]: operation(r) };
  if (allowedMethods().size !== Object.keys(paths).length) throw new Error("routes and paths disagree");
  return {
    openapi: "3.1.0",
    info: { title: "edgeport control API", version: "1", description: DESCRIPTION },
    servers: [{ url: "http://localhost", description: "the unix socket (curl --unix-socket PATH)" }],
    security: [{}, { bearer: [] }],
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "the TCP API's token (--api-token-file)" },
      },
      responses: {
        Unauthorized: errorReply("E_AUTH: the TCP API without its bearer token"),
        Forbidden: errorReply("E_FORBIDDEN: the TCP API with a foreign Host or Origin"),
        MethodNotAllowed: errorReply("E_METHOD_NOT_ALLOWED: the path takes other methods", {
          Allow: { description: "the methods it takes", schema: { type: "string" } },
        }),
      },
    },
  };
}
