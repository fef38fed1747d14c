/**
 * Every route of the control API, once: the app registers its handlers from this table, answers
 * 405 with `Allow` from it, and docs/openapi.json is generated from it. Pure data.
 */
import type { z } from "zod";
import {
  ApiError,
  DebugState,
  Health,
  OpenApiDoc,
  PortEntry,
  PortRows,
  PublishBody,
  PublishResult,
  State,
  UnpublishResult,
} from "../api-schemas.ts";

export type Method = "get" | "post" | "delete";

export interface Reply {
  description: string;
  /** a JSON body of this schema */
  schema?: z.ZodType;
  /** a text body of this media type instead */
  text?: string;
  headers?: Record<string, string>;
}

export interface Route {
  method: Method;
  /** OpenAPI's form: `/v1/ports/{id}` */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  body?: z.ZodType;
  replies: Record<number, Reply>;
}

const err = (description: string): Reply => ({ description, schema: ApiError });
const idParam = "{id}";

export const ROUTES = [
  {
    method: "get",
    path: "/v1/health",
    operationId: "getHealth",
    summary: "Is the daemon healthy: pipe up and engine followed",
    replies: { 200: { description: "healthy", schema: Health }, 503: { description: "not healthy", schema: Health } },
  },
  {
    method: "get",
    path: "/v1/ports",
    operationId: "listPorts",
    summary: "Every port: published, failed or in conflict, with its source and traffic",
    replies: { 200: { description: "the rows, by key", schema: PortRows } },
  },
  {
    method: "post",
    path: "/v1/ports",
    operationId: "publishPort",
    summary: "Publish a spec by hand (kept until it is unpublished)",
    description:
      "The body must be sent with `Content-Type: application/json` (else 415). Idempotent: the same spec again is 200 with the same id. Nothing of a spec stays published when one of its ports cannot be.",
    body: PublishBody,
    replies: {
      201: {
        description: "published",
        schema: PublishResult,
        headers: { Location: `/v1/ports/${idParam}: the new entry (the id percent-encoded)` },
      },
      200: { description: "the same spec was already published", schema: PublishResult },
      400: err("bad input: not JSON (naming the parse error), a body of the wrong shape (`issues`), a bad spec"),
      409: err("a host port is published by someone else, or cannot be bound (in use, address, permission)"),
      413: err("E_TOO_LARGE: the body is over 64 KiB"),
      415: err("E_UNSUPPORTED_MEDIA_TYPE: the Content-Type is not application/json"),
      503: err("E_FD_LIMIT at the file descriptor limit; E_DIAL when the engine cannot name a container's address"),
    },
  },
  {
    method: "get",
    path: `/v1/ports/${idParam}`,
    operationId: "getPort",
    summary: "One id's rows: an ad-hoc spec's every host port, or a container's (c-<id>)",
    replies: {
      200: { description: "the entry", schema: PortEntry },
      400: err("a malformed percent-escape in the id"),
      404: err("E_NOT_FOUND: no port has this id"),
    },
  },
  {
    method: "delete",
    path: `/v1/ports/${idParam}`,
    operationId: "unpublishPort",
    summary: "Unpublish an ad-hoc entry, by id or by the same spec (percent-encoded)",
    replies: {
      200: { description: "unpublished", schema: UnpublishResult },
      400: err("a container's id (c-...: stop the container instead), or a malformed percent-escape"),
      404: err("E_NOT_FOUND: nothing published by hand has this id or spec"),
    },
  },
  {
    method: "get",
    path: "/v1/state",
    operationId: "getState",
    summary: "The daemon's state: engine, pipe, binding, UDP settings, ports, file descriptors",
    replies: { 200: { description: "the state", schema: State } },
  },
  {
    method: "get",
    path: "/v1/debug/state",
    operationId: "getDebugState",
    summary: "The state plus the last 300 log events",
    replies: { 200: { description: "the state and events", schema: DebugState } },
  },
  {
    method: "get",
    path: "/v1/openapi.json",
    operationId: "getOpenApi",
    summary: "This document (OpenAPI 3.1)",
    replies: { 200: { description: "the OpenAPI document", schema: OpenApiDoc } },
  },
  {
    method: "get",
    path: "/metrics",
    operationId: "getMetrics",
    summary: "Prometheus text exposition of ports, pipe, engine and traffic",
    replies: { 200: { description: "the metrics", text: "text/plain; version=0.0.4; charset=utf-8" } },
  },
  {
    method: "get",
    path: "/_ping",
    operationId: "ping",
    summary: "Liveness: OK while the daemon answers",
    replies: { 200: { description: "OK", text: "text/plain" } },
  },
] as const satisfies readonly Route[];

export type OperationId = (typeof ROUTES)[number]["operationId"];

/** hono's form of a path: `/v1/ports/:id`. */
export const honoPath = (path: string): string => path.replace(/\{(\w+)\}/g, ":$1");

/** The methods each path takes, as an `Allow` header says them (HEAD with GET; OPTIONS always). */
export function allowedMethods(): Map<string, string> {
  const byPath = new Map<string, string[]>();
  for (const r of ROUTES) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r.method.toUpperCase()]);
  const order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
  return new Map(
    [...byPath].map(([path, methods]) => {
      const all = new Set([...methods, ...(methods.includes("GET") ? ["HEAD"] : []), "OPTIONS"]);
      return [path, order.filter((m) => all.has(m)).join(", ")];
    }),
  );
}
