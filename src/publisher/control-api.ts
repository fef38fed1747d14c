/**
 * The daemon's control API (hono). Served on a unix socket in a 0700 directory, created under
 * umask 077 so there is no window in which another user could connect; on a Windows named pipe;
 * or on tcp://127.0.0.1:PORT, where every request needs the bearer token and a Host (and Origin,
 * when sent) naming that loopback address, so a web page cannot reach it (DNS rebinding).
 * Errors are JSON `{code, message}`: 4xx for the caller's mistakes, never a stack trace.
 */

import { timingSafeEqual } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { EdgeportError, type ErrorCode } from "../shared/errors.ts";
import { recentLog } from "../shared/log.ts";
import { servePipeHttp } from "../shared/pipe-http.ts";
import type { Daemon } from "./daemon.ts";
import { metricsText } from "./metrics.ts";

export { metricsText } from "./metrics.ts";

export interface ControlApi {
  readonly url: string;
  close(): void;
}

export type ApiUrl =
  | { kind: "unix"; path: string }
  | { kind: "npipe"; path: string }
  | { kind: "tcp"; host: string; port: number };

/** `unix:///path`, a bare path, `npipe:////./pipe/name`, or `tcp://127.0.0.1:PORT` (loopback only). */
export function parseApiUrl(s: string): ApiUrl {
  if (s.startsWith("unix://")) return { kind: "unix", path: s.slice(7) };
  if (s.startsWith("/")) return { kind: "unix", path: s };
  if (s.startsWith("npipe://")) return { kind: "npipe", path: s.slice(8).replace(/\//g, "\\") };
  const m = /^tcp:\/\/(127\.0\.0\.1|\[::1\]|localhost):(\d{1,5})$/.exec(s);
  if (m && Number(m[2]) > 0 && Number(m[2]) < 65536)
    return { kind: "tcp", host: m[1] === "localhost" ? "127.0.0.1" : m[1]!.replace(/[[\]]/g, ""), port: Number(m[2]) };
  if (s.startsWith("tcp://"))
    throw new EdgeportError(
      "E_BAD_URL",
      `API URL "${s}": a TCP API listens on loopback only: tcp://127.0.0.1:PORT or tcp://[::1]:PORT`,
    );
  throw new EdgeportError(
    "E_BAD_URL",
    `API URL "${s}" is not one of unix:///path, npipe:////./pipe/NAME, tcp://127.0.0.1:PORT`,
  );
}

export const formatApiUrl = (u: ApiUrl): string =>
  u.kind === "unix"
    ? `unix://${u.path}`
    : u.kind === "npipe"
      ? `npipe://${u.path.replace(/\\/g, "/")}`
      : `tcp://${u.host.includes(":") ? `[${u.host}]` : u.host}:${u.port}`;

/** The HTTP status of each error code (docs/operations.md): 4xx the caller's mistake, 409 a port that cannot be bound. */
const STATUS: Record<ErrorCode, 400 | 401 | 403 | 404 | 409 | 502 | 503> = {
  E_BAD_SPEC: 400,
  E_BAD_ARG: 400,
  E_BAD_ADDRESS: 400,
  E_BAD_URL: 400,
  E_BAD_CIDR: 400,
  E_UNSUPPORTED: 400,
  E_AUTH: 401,
  E_FORBIDDEN_DEST: 403,
  E_NOT_FOUND: 404,
  E_CONFLICT: 409,
  E_PORT_IN_USE: 409,
  E_ADDR_NOT_AVAILABLE: 409,
  E_PERMISSION: 409,
  E_PROTOCOL: 502,
  E_DIAL: 503,
  E_PIPE_DOWN: 503,
  E_FD_LIMIT: 503,
};

/** Request bodies past this are refused (413) before they are read whole. */
export const MAX_BODY = 64 * 1024;

/** `Authorization: <scheme> <token>` with the scheme in any case (RFC 9110); null when malformed. */
export function bearerToken(header: string | undefined): string | null {
  const m = /^([A-Za-z]+) +(\S+) *$/.exec(header ?? "");
  return m && m[1]!.toLowerCase() === "bearer" ? m[2]! : null;
}

const PublishBody = z.strictObject({ spec: z.string().min(1).max(400), proxyProtocol: z.boolean().optional() });

/**
 * The TCP API's guard: a Host (and Origin, when sent) naming this loopback address (no DNS
 * rebinding), and the bearer token, compared in constant time.
 */
function tokenGuard(token: string, apiHost?: string, port?: number): MiddlewareHandler {
  const expected = Buffer.from(token);
  const hosts = new Set([`${apiHost?.includes(":") ? `[${apiHost}]` : apiHost}:${port}`, `localhost:${port}`]);
  return async (c, next) => {
    const host = c.req.header("host") ?? "";
    if (!hosts.has(host))
      return c.json({ code: "E_FORBIDDEN", message: `Host "${host.slice(0, 100)}" is not this API's address` }, 403);
    const origin = c.req.header("origin");
    if (origin !== undefined && ![...hosts].some((h) => origin === `http://${h}`))
      return c.json({ code: "E_FORBIDDEN", message: `Origin "${origin.slice(0, 100)}" may not use this API` }, 403);
    const got = Buffer.from(bearerToken(c.req.header("authorization")) ?? "");
    if (got.length !== expected.length || !timingSafeEqual(got, expected))
      return c.json(
        { code: "E_AUTH", message: "a bearer token is required (Authorization: Bearer <token from --api-token-file>)" },
        401,
      );
    await next();
  };
}

export function createControlApp(
  daemon: Pick<Daemon, "state" | "publish" | "unpublish">,
  o: { token?: string; host?: string; port?: number; pid?: number } = {},
): Hono {
  const app = new Hono();
  const fail = (code: ErrorCode, message: string) => new EdgeportError(code, message);
  if (o.token !== undefined) app.use("*", tokenGuard(o.token, o.host, o.port));
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY,
      onError: (c) => c.json({ code: "E_TOO_LARGE", message: `the request body is over ${MAX_BODY} bytes` }, 413),
    }),
  );
  app.get("/v1/health", (c) => {
    const st = daemon.state();
    const ok = st.pipe.up && (st.engine === null || st.engine.connected);
    const fds = st.fds ? { fds: st.fds } : {};
    const pid = o.pid === undefined ? {} : { pid: o.pid };
    return c.json({ ok, pipe: st.pipe.up, engine: st.engine?.connected ?? null, ...fds, ...pid }, ok ? 200 : 503);
  });
  app.get("/v1/ports", (c) => c.json(daemon.state().ports));
  app.post("/v1/ports", async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw fail("E_BAD_ARG", 'the body must be JSON: {"spec": "[HOST_IP:]HOST_PORT:TARGET:TARGET_PORT[/udp]"}');
    }
    const parsed = PublishBody.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const key =
        issue.code === "unrecognized_keys"
          ? `unknown key "${issue.keys.join('", "')}"`
          : `${issue.path.join(".") || "body"}: ${issue.message}`;
      throw fail("E_BAD_ARG", `bad request: ${key}; expected {"spec": "...", "proxyProtocol"?: true|false}`);
    }
    const result = await daemon.publish(parsed.data.spec, "ad-hoc", { proxyProtocol: parsed.data.proxyProtocol });
    return c.json(result, result.created ? 201 : 200);
  });
  app.delete("/v1/ports/:id", async (c) => {
    let id: string;
    try {
      id = decodeURIComponent(c.req.param("id"));
    } catch {
      throw fail(
        "E_BAD_ARG",
        "the id in the path has a malformed percent-escape (encode a spec with encodeURIComponent)",
      );
    }
    if (id.startsWith("c-"))
      throw fail("E_BAD_ARG", `${id} is published by a container; stop or remove the container instead`);
    const removed = await daemon.unpublish(id);
    return c.json({ id, removed });
  });
  const debug = () => ({ ...daemon.state(), events: recentLog() });
  app.get("/v1/debug/state", (c) => c.json(debug()));
  app.get("/v1/state", (c) => c.json(daemon.state()));
  app.get("/metrics", (c) =>
    c.text(metricsText(daemon.state()), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }),
  );
  app.get("/_ping", (c) => c.text("OK"));
  app.notFound((c) => c.json({ code: "E_NOT_FOUND", message: `no such endpoint: ${c.req.method} ${c.req.path}` }, 404));
  app.onError((e, c) => {
    if (e instanceof EdgeportError) return c.json({ code: e.code, message: e.message }, STATUS[e.code]);
    return c.json({ code: "E_INTERNAL", message: (e as Error).message ?? "internal error" }, 500);
  });
  return app;
}

export function serveControlApi(
  url: ApiUrl,
  daemon: Pick<Daemon, "state" | "publish" | "unpublish">,
  o: { token?: string; pid?: number } = {},
): ControlApi {
  if (url.kind === "tcp") {
    if (!o.token)
      throw new EdgeportError(
        "E_BAD_ARG",
        "--api tcp://... needs --api-token-file: a TCP API without a token would let any local program publish ports",
      );
    const app = createControlApp(daemon, { token: o.token, host: url.host, port: url.port, pid: o.pid });
    let server: ReturnType<typeof Bun.serve>;
    try {
      server = Bun.serve({ hostname: url.host, port: url.port, fetch: app.fetch });
    } catch (e) {
      throw new EdgeportError("E_PORT_IN_USE", `--api ${formatApiUrl(url)}: cannot listen: ${(e as Error).message}`);
    }
    return { url: formatApiUrl({ ...url, port: server.port! }), close: () => void server.stop(true) };
  }
  const path = url.path;
  if (url.kind === "unix") {
    const dir = dirname(path);
    // the caller checked the directory (src/shared/control-socket.ts); never chmod what is there
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket())
        throw new EdgeportError("E_BAD_ARG", `--api ${path} exists and is not a socket; refusing to replace it`);
      unlinkSync(path);
    }
  }
  const app = createControlApp(daemon, { pid: o.pid });
  if (url.kind === "npipe") {
    // Bun.serve cannot listen on a named pipe; Bun.listen can (src/shared/pipe-http.ts)
    const pipe = servePipeHttp(path, app.fetch);
    return { url: formatApiUrl(url), close: () => pipe.stop() };
  }
  const old = process.umask(0o077);
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ unix: path, fetch: app.fetch });
  } finally {
    process.umask(old);
  }
  return {
    url: formatApiUrl(url),
    close() {
      server.stop(true);
      if (url.kind === "unix" && existsSync(path)) unlinkSync(path);
    },
  };
}
