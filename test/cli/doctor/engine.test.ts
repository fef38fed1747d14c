/** The engine lines: where the URL came from, whether it answers, the clock skew. */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createConsola } from "consola";
import { clockSkew, engineChecks } from "../../../src/cli/doctor/engine.ts";
import { probeEngine } from "../../../src/cli/doctor/engine-probe.ts";
import { createDialPolicy } from "../../../src/relay/forwarder/dial-policy.ts";
import { startForwarder } from "../../../src/relay/forwarder/forwarder.ts";
import { parseTransportUrl } from "../../../src/relay/transports/url.ts";
import { until } from "../../helpers/until.ts";

describe("engine lines", () => {
  const choice = { url: "unix:///e.sock", source: "DOCKER_HOST" };
  const at = (skewMs: number, rtt = 10) => ({
    sentAt: 1000,
    receivedAt: 1000 + rtt,
    engineTime: 1005 + skewMs,
    resolutionMs: 0,
    from: "x",
  });
  test("down: fail naming the URL's origin, E_DIAL; the clock is skipped", () => {
    const [e, c] = engineChecks({ choice, error: "ECONNREFUSED" });
    expect(e).toMatchObject({
      verdict: "fail",
      code: "E_DIAL",
      detail: "unix:///e.sock (from DOCKER_HOST) does not answer: ECONNREFUSED",
    });
    expect(c!.verdict).toBe("skip");
  });
  test.each([
    [0, "pass"],
    [900, "pass"],
    [5000, "warn"],
    [-120_000, "fail"],
  ] as const)("skew %d ms: %s", (skew, verdict) => {
    const [e, c] = engineChecks({ choice, version: { apiVersion: "1.41", engineVersion: "27.3.1" }, clock: at(skew) });
    expect(e).toMatchObject({
      verdict: "pass",
      detail: "unix:///e.sock (from DOCKER_HOST) answers: engine 27.3.1, API 1.41",
    });
    expect(c!.verdict).toBe(verdict);
  });
  test("skew is measured from the round trip's middle, uncertain by half of it plus the clock's resolution", () => {
    expect(clockSkew({ sentAt: 0, receivedAt: 100, engineTime: 2050, resolutionMs: 500, from: "Date" })).toEqual({
      skewMs: 2000,
      uncertaintyMs: 550,
    });
  });
  test("none: both skipped", () => {
    expect(engineChecks({ choice: { url: "none", source: "--engine" } }).map((r) => r.verdict)).toEqual([
      "skip",
      "skip",
    ]);
  });
});

describe("probe on a real socket", () => {
  let dir = "";
  let server: ReturnType<typeof Bun.serve> | null = null;
  afterEach(() => {
    server?.stop(true);
    server = null;
    rmSync(dir, { recursive: true, force: true });
  });
  function fakeEngine(info: unknown): string {
    dir = mkdtempSync("/tmp/edgeport-doctor-engine-");
    const unix = join(dir, "engine.sock");
    server = Bun.serve({
      unix,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/_ping") return new Response("OK", { headers: { "api-version": "1.45" } });
        if (path === "/version") return Response.json({ ApiVersion: "1.45", Version: "27.3.1" });
        if (path === "/info") return Response.json(info);
        return new Response("no", { status: 404 });
      },
    });
    return `unix://${unix}`;
  }
  test("version and /info's SystemTime", async () => {
    const url = fakeEngine({ SystemTime: new Date(Date.now() + 90_000).toISOString() });
    const { facts } = await probeEngine({ url, source: "--engine" });
    expect(facts.version).toEqual({ apiVersion: "1.41", engineVersion: "27.3.1" });
    expect(facts.clock?.from).toBe("/info SystemTime");
    expect(engineChecks(facts)[1]).toMatchObject({
      verdict: "fail",
      detail: expect.stringMatching(/^engine clock \+(89|90)\.\d+ s/),
    });
  });
  test("no SystemTime: the Date header", async () => {
    const { facts } = await probeEngine({ url: fakeEngine({}), source: "--engine" });
    expect(facts.clock?.from).toBe("the Date header");
    expect(engineChecks(facts)[1]!.verdict).toBe("pass");
  });
  test("vm:///path: asked through a pipe of doctor's own to the forwarder, which it then closes", async () => {
    const url = fakeEngine({ SystemTime: new Date().toISOString() });
    const sock = url.slice("unix://".length);
    const fwd = startForwarder({
      listen: parseTransportUrl(`unix://${dir}/fwd.sock`, "listen"),
      policy: createDialPolicy({ allow: [], engineSocket: sock }),
      log: createConsola({ level: -1 }),
    });
    try {
      const probe = await probeEngine(
        { url: `vm://${sock}`, source: "--engine" },
        { relay: { url: parseTransportUrl(fwd.address, "connect") } },
      );
      expect(probe.facts.version).toEqual({ apiVersion: "1.41", engineVersion: "27.3.1" });
      expect(probe.facts.clock?.from).toBe("/info SystemTime");
      expect(engineChecks(probe.facts)[0]).toMatchObject({
        verdict: "pass",
        detail: `vm://${sock} (from --engine) through the pipe ${fwd.address} answers: engine 27.3.1, API 1.41`,
      });
      expect(fwd.sessions.size).toBe(1);
      probe.close();
      await until(() => fwd.sessions.size === 0, "doctor's pipe closed");
    } finally {
      fwd.close();
    }
  });
  test("vm:///path without a relay: the line says what is missing", async () => {
    const { facts, engine } = await probeEngine({ url: "vm:///var/run/docker.sock", source: "--engine" });
    expect(engine).toBeNull();
    expect(engineChecks(facts)[0]).toMatchObject({
      verdict: "fail",
      detail:
        "vm:///var/run/docker.sock (from --engine) does not answer: it is inside the VM and is reached through the pipe: give doctor the daemon's --relay (or --config)",
    });
  });
  test("nothing there: the error without the URL twice", async () => {
    dir = mkdtempSync("/tmp/edgeport-doctor-engine-");
    const { facts, engine } = await probeEngine({ url: `unix://${dir}/none.sock`, source: "--engine" });
    expect(engine).toBeNull();
    expect(facts.error).toBe("no socket there (ENOENT)");
  });
});
