import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createControlApp, serveControlApi } from "../../src/publisher/control-api.ts";
import type { DaemonState } from "../../src/publisher/daemon.ts";

const state: DaemonState = {
  engine: { url: "unix:///var/run/docker.sock", connected: true },
  pipe: { url: "unix:///tmp/fwd.sock", up: false },
  binding: "local-default",
  udp: { idleMs: 120000, maxFlows: 4096 },
  containers: 1,
  ports: [{ key: "tcp:127.0.0.1:8080", host: "127.0.0.1:8080", target: "172.17.0.2:80", container: "web", status: "failed", error: "cannot listen", code: "E_PORT_IN_USE" }],
};

test("GET /v1/state answers the daemon's state; unknown paths are a 404 naming them", async () => {
  const app = createControlApp(() => state);
  expect(await (await app.request("/v1/state")).json()).toEqual(state);
  const r = await app.request("/v1/nope", { method: "POST" });
  expect(r.status).toBe(404);
  expect(await r.json()).toEqual({ error: "no such endpoint: POST /v1/nope", code: "E_NOT_FOUND" });
});

test("the socket lives in a 0700 directory and is not reachable by other users", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edgeport-control-"));
  const path = join(dir, "sub", "control.sock");
  const api = serveControlApi(path, () => state);
  try {
    expect(statSync(join(dir, "sub")).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o077).toBe(0);
    const r = await fetch("http://localhost/v1/state", { unix: path } as RequestInit);
    expect(((await r.json()) as DaemonState).ports[0]!.code).toBe("E_PORT_IN_USE");
  } finally {
    api.close();
    expect(existsSync(path)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  }
});
