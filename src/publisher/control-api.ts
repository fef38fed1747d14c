/**
 * The daemon's control API (hono) on a unix socket in a 0700 directory, created under umask 077
 * so there is no window in which another user could connect. Read-only for now: GET /v1/state.
 */
import { mkdirSync, existsSync, lstatSync, unlinkSync, chmodSync } from "node:fs";
import { dirname } from "node:path";
import { Hono } from "hono";
import { EdgeportError } from "../shared/errors.ts";
import type { DaemonState } from "./daemon.ts";

export interface ControlApi {
  readonly path: string;
  close(): void;
}

export function createControlApp(state: () => DaemonState): Hono {
  const app = new Hono();
  app.get("/v1/state", (c) => c.json(state()));
  app.get("/_ping", (c) => c.text("OK"));
  app.notFound((c) => c.json({ error: `no such endpoint: ${c.req.method} ${c.req.path}`, code: "E_NOT_FOUND" }, 404));
  app.onError((e, c) => c.json({ error: e.message, code: e instanceof EdgeportError ? e.code : "E_INTERNAL" }, 500));
  return app;
}

export function serveControlApi(path: string, state: () => DaemonState): ControlApi {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new EdgeportError("E_BAD_ARG", `--control ${path} exists and is not a socket; refusing to replace it`);
    unlinkSync(path);
  }
  const app = createControlApp(state);
  const old = process.umask(0o077);
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ unix: path, fetch: app.fetch });
  } finally {
    process.umask(old);
  }
  return {
    path,
    close() {
      server.stop(true);
      if (existsSync(path)) unlinkSync(path);
    },
  };
}
