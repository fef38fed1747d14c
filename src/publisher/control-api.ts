/**
 * The daemon's control API (hono). Served on a unix socket in a 0700 directory, created under
 * umask 077 so there is no window in which another user could connect; on a Windows named pipe;
 * or on tcp://127.0.0.1:PORT, where every request needs the bearer token and a Host (and Origin,
 * when sent) naming that loopback address, so a web page cannot reach it (DNS rebinding).
 * The routes are one table (control-api/routes.ts), also the source of docs/openapi.json.
 * Errors are JSON `{code, message}` (plus `issues` for a body's problems): 4xx for the caller's
 * mistakes, never a stack trace; 405 with `Allow` for a known path's other methods.
 */
import { existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { EdgeportError, isEdgeportError } from "../shared/errors.ts";
import { recentLog } from "../shared/log.ts";
import { servePipeHttp } from "../shared/pipe-http.ts";
import { PublishBody } from "./api-schemas.ts";
import { type ApiUrl, formatApiUrl } from "./control-api/api-url.ts";
import { tokenGuard } from "./control-api/guard.ts";
import { openApiDocument } from "./control-api/openapi.ts";
import { errorBody, STATUS, validationError } from "./control-api/replies.ts";
import { allowedMethods, honoPath, type OperationId, ROUTES } from "./control-api/routes.ts";
import type { Daemon } from "./daemon.ts";
import { metricsText } from "./metrics.ts";

export { type ApiUrl, formatApiUrl, parseApiUrl } from "./control-api/api-url.ts";
export { bearerToken } from "./control-api/guard.ts";
export { metricsText } from "./metrics.ts";

export interface ControlApi {
  readonly url: string;
  close(): void;
}

/** Request bodies past this are refused (413) before they are read whole. */
export const MAX_BODY = 64 * 1024;

type ApiDaemon = Pick<Daemon, "state" | "publish" | "unpublish">;
type Handler = (c: Context) => Response | Promise<Response>;

const PUBLISH_HINT = 'expected {"spec": "[HOST_IP:]HOST_PORT:TARGET:TARGET_PORT[/udp]", "proxyProtocol"?: true|false}';

/** The `{id}` of /v1/ports/{id}, percent-decoded once (hono's param would decode what it decoded again). */
function idOf(c: Context): string {
  const raw = new URL(c.req.url).pathname.replace(/^\/v1\/ports\//, "");
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new EdgeportError(
      "E_BAD_ARG",
      "the id in the path has a malformed percent-escape (encode a spec with encodeURIComponent)",
    );
  }
}

/** The JSON body of a request: 415 unless it says application/json, 400 naming the parse error. */
async function jsonBody(c: Context): Promise<{ ok: true; body: unknown } | { ok: false; res: Response }> {
  const type = c.req.header("content-type");
  const media = (type ?? "").split(";")[0]!.trim().toLowerCase();
  if (media !== "application/json") {
    const got = type === undefined ? "no Content-Type" : `Content-Type "${type.slice(0, 100)}"`;
    const msg = `the body must be JSON sent with Content-Type: application/json (got ${got})`;
    c.header("Accept", "application/json");
    return { ok: false, res: c.json(errorBody("E_UNSUPPORTED_MEDIA_TYPE", msg), 415) };
  }
  const text = await c.req.text();
  try {
    return { ok: true, body: JSON.parse(text) };
  } catch (e) {
    const why = text.trim() === "" ? "the body is empty" : (e as Error).message;
    return {
      ok: false,
      res: c.json(errorBody("E_BAD_ARG", `the body is not valid JSON: ${why}; ${PUBLISH_HINT}`), 400),
    };
  }
}

function handlers(daemon: ApiDaemon, pid?: number): Record<OperationId, Handler> {
  let openapi: Record<string, unknown> | undefined;
  return {
    getHealth: (c) => {
      const st = daemon.state();
      const ok = st.pipe.up && (st.engine === null || st.engine.connected);
      const fds = st.fds ? { fds: st.fds } : {};
      return c.json(
        { ok, pipe: st.pipe.up, engine: st.engine?.connected ?? null, ...fds, ...(pid === undefined ? {} : { pid }) },
        ok ? 200 : 503,
      );
    },
    listPorts: (c) => c.json(daemon.state().ports),
    publishPort: async (c) => {
      const read = await jsonBody(c);
      if (!read.ok) return read.res;
      const parsed = PublishBody.safeParse(read.body);
      if (!parsed.success) return c.json(validationError(parsed.error, read.body, PUBLISH_HINT), 400);
      const result = await daemon
        .publish(parsed.data.spec, "ad-hoc", { proxyProtocol: parsed.data.proxyProtocol })
        .catch((e: unknown) => {
          // a spec the daemon refuses is a problem of the field "spec"
          if (isEdgeportError(e, "E_BAD_SPEC"))
            return c.json(errorBody(e.code, e.message, [{ path: "spec", message: e.message }]), 400);
          throw e;
        });
      if (result instanceof Response) return result;
      if (result.created) c.header("Location", `/v1/ports/${encodeURIComponent(result.id)}`);
      return c.json(result, result.created ? 201 : 200);
    },
    getPort: (c) => {
      const id = idOf(c);
      const ports = daemon.state().ports.filter((p) => p.id === id);
      if (!ports.length)
        throw new EdgeportError("E_NOT_FOUND", `no port has the id "${id.slice(0, 100)}" (GET /v1/ports lists them)`);
      return c.json({ id, ports });
    },
    unpublishPort: async (c) => {
      const id = idOf(c);
      if (id.startsWith("c-"))
        throw new EdgeportError("E_BAD_ARG", `${id} is published by a container; stop or remove the container instead`);
      if (!(await daemon.unpublish(id)))
        throw new EdgeportError(
          "E_NOT_FOUND",
          `nothing published by hand has the id or spec "${id.slice(0, 400)}" (see GET /v1/ports)`,
        );
      return c.json({ id, removed: true });
    },
    getState: (c) => c.json(daemon.state()),
    getDebugState: (c) => c.json({ ...daemon.state(), events: recentLog() }),
    getOpenApi: (c) => c.json((openapi ??= openApiDocument())),
    getMetrics: (c) =>
      c.text(metricsText(daemon.state()), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }),
    ping: (c) => c.text("OK"),
  };
}

export function createControlApp(
  daemon: ApiDaemon,
  o: { token?: string; host?: string; port?: number; pid?: number } = {},
): Hono {
  const app = new Hono();
  if (o.token !== undefined) app.use("*", tokenGuard(o.token, o.host, o.port));
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY,
      onError: (c) => c.json(errorBody("E_TOO_LARGE", `the request body is over ${MAX_BODY} bytes`), 413),
    }),
  );
  const handle = handlers(daemon, o.pid);
  for (const r of ROUTES) app.on(r.method.toUpperCase(), honoPath(r.path), handle[r.operationId]);
  // a known path with another method: 405 naming the ones it takes (OPTIONS: just those)
  for (const [path, allow] of allowedMethods())
    app.all(honoPath(path), (c) => {
      c.header("Allow", allow);
      if (c.req.method === "OPTIONS") return c.body(null, 204);
      return c.json(errorBody("E_METHOD_NOT_ALLOWED", `${c.req.method} ${c.req.path}: this path takes ${allow}`), 405);
    });
  app.notFound((c) => c.json(errorBody("E_NOT_FOUND", `no such endpoint: ${c.req.method} ${c.req.path}`), 404));
  app.onError((e, c) => {
    if (e instanceof EdgeportError) return c.json(errorBody(e.code, e.message), STATUS[e.code]);
    return c.json(errorBody("E_INTERNAL", (e as Error).message ?? "internal error"), 500);
  });
  return app;
}

export function serveControlApi(url: ApiUrl, daemon: ApiDaemon, o: { token?: string; pid?: number } = {}): ControlApi {
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
