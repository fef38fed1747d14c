/**
 * `edgeport run` without --engine, as compiled: it follows the docker CLI's current context, and
 * its log lines about the engine say where the URL came from. A real engine answers on a unix
 * socket (a minimal Docker API served by Bun), so the context's socket is really dialled.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, logLines, until } from "../helpers/e2e.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-ctx-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("edgeport run follows the current docker context and names it", async () => {
  const exe = await ensureBinary();
  const sock = join(dir, "engine.sock");
  const seen: string[] = [];
  const engine = Bun.serve({
    unix: sock,
    fetch(req) {
      const path = new URL(req.url).pathname;
      seen.push(path);
      if (path === "/_ping") return new Response("OK", { headers: { "Api-Version": "1.43" } });
      if (path.endsWith("/version")) return Response.json({ ApiVersion: "1.43", Version: "24.0.0" });
      if (path.endsWith("/events")) return new Response(new ReadableStream({ start() {} }));
      if (path.endsWith("/containers/json")) return Response.json([]);
      return new Response("not found", { status: 404 });
    },
  });
  const cfg = join(dir, "docker");
  const digest = new Bun.CryptoHasher("sha256").update("vm").digest("hex");
  mkdirSync(join(cfg, "contexts/meta", digest), { recursive: true });
  writeFileSync(join(cfg, "config.json"), JSON.stringify({ currentContext: "vm" }));
  writeFileSync(
    join(cfg, "contexts/meta", digest, "meta.json"),
    JSON.stringify({ Name: "vm", Endpoints: { docker: { Host: `unix://${sock}` } } }),
  );
  const logFile = join(dir, "run.log");
  const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: dir, DOCKER_CONFIG: cfg };
  const p = Bun.spawn(
    [
      exe,
      "run",
      "--relay",
      `unix://${join(dir, "no-forwarder.sock")}`,
      "--api",
      "none",
      "--firewall",
      "none",
      "--log-format",
      "json",
    ],
    { env, stdout: "ignore", stderr: Bun.file(logFile) },
  );
  try {
    await until(() => seen.some((s) => s.endsWith("/events")), "edgeport run to follow the context's engine");
    const first = logLines(logFile).find((l) => l.msg.startsWith("edgeport "))!;
    expect(first.msg).toContain(
      `engine unix://${sock} (from docker context "vm", current in ${cfg}/config.json, ${cfg}/contexts/meta/${digest}/meta.json)`,
    );
    engine.stop(true);
    await until(
      () => logLines(logFile).some((l) => l.level === "warn" && l.msg.includes("unreachable")),
      "the engine outage in the log",
    );
    const warn = logLines(logFile).find((l) => l.level === "warn" && l.msg.includes("unreachable"))!;
    expect(warn.msg).toContain('(from docker context "vm"');
  } finally {
    p.kill("SIGTERM");
    await p.exited;
    engine.stop(true);
  }
});
