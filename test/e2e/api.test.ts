/**
 * The control API and the operator CLI against the real daemon (`edgeport run`, compiled) and the
 * test bed: publish by hand (by IP and by container name), list, unpublish, idempotency, bad input
 * that never disturbs what is published, socket modes, the TCP API's guards, and /metrics.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { INDEX_HTML, startTestbed, type Testbed } from "../../scripts/testbed.ts";
import type { PortState } from "../../src/publisher/daemon.ts";
import { parseProxyV2 } from "../../src/shared/proxy-protocol.ts";
import { EDGEPORT, echoOnce, ensureBinary, hasLog, spawnHost, stopProcess, until, writeToken } from "../helpers/e2e.ts";
import { canBind, connectClient, freePortRange, sha256 } from "../helpers/tcp-client.ts";

let tb: Testbed;
let fwd: Bun.Subprocess;
let daemon: Bun.Subprocess;
let fwdSock: string;
let api: string;
let srvIp: string;
let base: number;
let runLog: string;

const cli = (args: string[]) => {
  const r = Bun.spawnSync([EDGEPORT, ...args, "--api", `unix://${api}`], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};
/** an error's body; a test names other bodies' type */
type ApiError = { code?: string; message?: string };
const call = async <T = ApiError>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> => {
  const r = await fetch(`http://localhost${path}`, {
    method,
    unix: api,
    ...(body !== undefined
      ? {
          body: typeof body === "string" ? body : JSON.stringify(body),
          headers: { "content-type": "application/json" },
        }
      : {}),
  } as RequestInit);
  return { status: r.status, body: (await r.json().catch(async () => r.text())) as T };
};
const ports = async () => (await call<PortState[]>("GET", "/v1/ports")).body;
/** Sends `send` and collects what comes back until n bytes (the test server echoes). */
async function echoed(
  port: number,
  send: string,
  n: number,
  host = "127.0.0.1",
): Promise<{ bytes: Uint8Array; localPort: number }> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  const { promise, resolve } = Promise.withResolvers<void>();
  const s = await Bun.connect({
    hostname: host,
    port,
    socket: {
      data(_s, d) {
        chunks.push(d);
        got += d.length;
        if (got >= n) resolve();
      },
    },
  });
  const localPort = s.localPort; // read while open: a closed socket no longer has one
  s.write(send);
  await Promise.race([promise, Bun.sleep(5000)]);
  s.end();
  return { bytes: Buffer.concat(chunks), localPort };
}
/** curl on the control socket: status, headers (lower-case names) and the JSON body. */
function curlApi(args: string[]): {
  status: number;
  headers: Record<string, string>;
  body: ApiError & Record<string, unknown>;
} {
  const r = Bun.spawnSync(["curl", "-sS", "-i", "-m", "5", "--unix-socket", api, ...args]);
  const text = r.stdout.toString();
  const [head, ...rest] = text.split("\r\n\r\n");
  const lines = head!.split("\r\n");
  const headers = Object.fromEntries(
    lines.slice(1).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
  );
  const body = rest.join("\r\n\r\n");
  return { status: Number(lines[0]!.split(" ")[1]), headers, body: body ? JSON.parse(body) : {} };
}
const curl = (port: number) => Bun.spawnSync(["curl", "-sS", "-m", "3", `http://127.0.0.1:${port}/`]).stdout.toString();

beforeAll(async () => {
  await ensureBinary();
  tb = await startTestbed();
  srvIp = (await tb.runTestServer("testsrv")).ip;
  await tb.runContainer({ name: "web", args: ["httpd", "-f", "-p", "80", "-h", "/www"] });
  fwdSock = join(tb.dir, "edgeport", "fwd.sock");
  const fwdLog = join(tb.dir, "forwarder.log");
  fwd = tb.spawnInVm(
    [EDGEPORT, "forwarder", "--listen", `unix://${fwdSock}`, "--allow", "172.17.0.0/16", "--log-format", "json"],
    { logFile: fwdLog },
  );
  await until(() => hasLog(fwdLog, /^listening on/), "the forwarder");
  api = join(tb.dir, "api", "control.sock");
  runLog = join(tb.dir, "run.log");
  base = freePortRange(20);
  // the relay, the firewall and the rules come from a TOML config; the command line names the rest
  const config = join(tb.dir, "edgeport.toml");
  await Bun.write(
    config,
    `relay = "unix://${fwdSock}"\nfirewall = "none"\nbinding = "local-only"\nreserved = [22, ${base + 15}]\n[ignore]\nlabels = ["edgeport.ignore"]\n`,
  );
  daemon = spawnHost(
    ["run", "--config", config, "--engine", tb.dockerHost, "--api", `unix://${api}`, "--binding", "local-default"],
    runLog,
  );
  await until(() => hasLog(runLog, /^following engine/), "the daemon");
}, 120_000);

afterAll(async () => {
  await stopProcess(daemon);
  await stopProcess(fwd);
  await tb?.stop();
}, 60_000);

describe("the control API and the CLI on the real daemon", () => {
  test("the API socket is owner-only in a 0700 directory", () => {
    expect(statSync(dirname(api)).mode & 0o777).toBe(0o700);
    expect(statSync(api).mode & 0o077).toBe(0);
  });

  test("edgeport publish through the daemon (by IP, then by container name); again is idempotent; ls shows source, state and traffic", async () => {
    const a = cli(["publish", `127.0.0.1:${base}:${srvIp}:7001`]);
    expect(a.code).toBe(0);
    const id = a.out.split(" ")[0]!;
    expect(a.out).toBe(`${id} published: 127.0.0.1:${base}->${srvIp}:7001/tcp\n`);
    expect(await echoOnce(base, "through the daemon")).toBe(true);
    expect(cli(["publish", `127.0.0.1:${base}:${srvIp}:7001`]).out).toBe(
      `${id} already published: 127.0.0.1:${base}->${srvIp}:7001/tcp\n`,
    );
    const byName = cli(["publish", `${base + 1}:web:80`]);
    expect(byName.code).toBe(0);
    expect(byName.out).toMatch(new RegExp(`published: .*127\\.0\\.0\\.1:${base + 1}->172\\.17\\.0\\.\\d+:80/tcp`));
    expect(byName.out).toContain(`[::1]:${base + 1}->`);
    expect(curl(base + 1)).toBe(INDEX_HTML);
    const row = (await ports()).find((p) => p.key === `tcp:127.0.0.1:${base}`)!;
    expect(row).toMatchObject({
      id,
      status: "published",
      source: { kind: "ad-hoc" },
      connectionsTotal: 1,
      bytesIn: 18,
      bytesOut: 18,
    });
    const ls = cli(["ls"]);
    expect(ls.out).toMatch(
      new RegExp(
        `${id}\\s+127\\.0\\.0\\.1:${base}->${srvIp.replace(/\./g, "\\.")}:7001/tcp\\s+ad-hoc \\(persisted\\)\\s+listening\\s+0/1\\s+18 B\\s+18 B`,
      ),
    );
  });

  test("bad input is a 4xx naming the problem, and nothing published is disturbed", async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ spec: "8080:1.2.3.4:80x" }, 400, /target port "80x" is not a number 1-65535/],
      [{ spec: `${base + 5}:1.2.3.4:80`, hostIp: "0.0.0.0" }, 400, /unknown key "hostIp"/],
      [{ spec: "0:1.2.3.4:80" }, 400, /host port "0" is not a number 1-65535/],
      [{ spec: "70000:1.2.3.4:80" }, 400, /host port "70000" is not a number 1-65535/],
      [{ spec: `${base + 5}:0.0.0.0:80` }, 400, /unspecified/],
      [{ spec: `*:${base + 5}:1.2.3.4:80` }, 400, /bad spec/],
      [{ spec: `${base + 5}:no-such-container:80` }, 400, /no container named "no-such-container"/],
      [
        { spec: `127.0.0.1:${base}:${srvIp}:7002` },
        409,
        new RegExp(`tcp:127\\.0\\.0\\.1:${base} is already published for ad-hoc`),
      ],
      [{}, 400, /spec/],
      ["[1,2", 400, /^the body is not valid JSON: JSON Parse error: /],
    ];
    for (const [body, status, re] of cases) {
      const r = await call("POST", "/v1/ports", body);
      expect([r.status, r.body.code !== undefined, r.body.message]).toEqual([status, true, expect.stringMatching(re)]);
    }
    // a port that cannot be bound: 409 with the cause; nothing of the spec stays
    const held = Bun.listen({ hostname: "127.0.0.1", port: base + 6, socket: { data() {} } });
    try {
      const r = await call("POST", "/v1/ports", { spec: `127.0.0.1:${base + 6}-${base + 7}:${srvIp}:7001-7002` });
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({
        code: "E_PORT_IN_USE",
        message: expect.stringMatching(/already in use.*nothing of .* was published/),
      });
      expect(canBind("127.0.0.1", base + 7)).toBe(true);
    } finally {
      held.stop(true);
    }
    expect(await echoOnce(base, "still here")).toBe(true);
    expect(curl(base + 1)).toBe(INDEX_HTML);
  });

  test("--proxy-protocol: the container gets a PROXY v2 header with the client's address before the client's bytes; TCP only; ls shows it", async () => {
    const p = base + 8;
    const r = cli(["publish", "--proxy-protocol", `${p}:${srvIp}:7001`]);
    expect(r.code).toBe(0);
    // the test server echoes everything it receives: the header comes back first
    for (const host of ["127.0.0.1", "::1"]) {
      const { bytes, localPort } = await echoed(p, "who am I?", 9 + (host === "::1" ? 52 : 28), host);
      const h = parseProxyV2(bytes)!;
      expect(h).toEqual({
        src: { ip: host, port: localPort },
        dst: { ip: host, port: p },
        length: host === "::1" ? 52 : 28,
      });
      expect(Buffer.from(bytes.subarray(h.length)).toString()).toBe("who am I?");
    }
    expect(cli(["ls"]).out).toMatch(new RegExp(`127\\.0\\.0\\.1,\\[::1\\]:${p}->\\S+:7001/tcp \\+PROXY`));
    const udp = cli(["publish", "--proxy-protocol", `${p + 1}:${srvIp}:7002/udp`]);
    expect([udp.code, udp.err]).toEqual([2, expect.stringContaining("--proxy-protocol is for TCP only")]);
    const api = await call("POST", "/v1/ports", { spec: `${p + 1}:${srvIp}:7002/udp`, proxyProtocol: true });
    expect([api.status, api.body.message]).toEqual([
      400,
      expect.stringContaining("the PROXY protocol is for TCP only"),
    ]);
    // the same spec without the header is another entry: it conflicts, and the spec unpublishes the one there is
    expect((await call("POST", "/v1/ports", { spec: `${p}:${srvIp}:7001` })).status).toBe(409);
    expect(cli(["unpublish", `${p}:${srvIp}:7001`]).out).toBe(`${p}:${srvIp}:7001: unpublished\n`);
    await until(() => canBind("127.0.0.1", p), "the port to be free");
  });

  test("label edgeport.proxy-protocol on a container: its ports named there get the header from edgeport run", async () => {
    const p = base + 18;
    await tb.runTestServer("proxied", [
      "--label",
      "edgeport.proxy-protocol=7001",
      "-p",
      `127.0.0.1:${p}:7001`,
      "-p",
      `127.0.0.1:${p + 1}:7002`,
    ]);
    await until(async () => (await ports()).some((x) => x.key === `tcp:127.0.0.1:${p + 1}`), "the container's ports");
    const { bytes, localPort } = await echoed(p, "labelled", 8 + 28);
    expect(parseProxyV2(bytes)).toEqual({
      src: { ip: "127.0.0.1", port: localPort },
      dst: { ip: "127.0.0.1", port: p },
      length: 28,
    });
    // a port the label does not name gets no header: the server counts exactly the client's bytes
    const c = await connectClient(p + 1);
    await c.write(new TextEncoder().encode("plain"));
    c.socket.shutdown();
    await c.closed;
    expect(c.text()).toBe(`${sha256("plain")} 5\n`);
    expect((await ports()).find((x) => x.key === `tcp:127.0.0.1:${p}`)?.proxyProtocol).toBe(true);
    await tb.dockerOk(["rm", "-f", "proxied"]);
  });

  test("unpublish by id and by spec; again is idempotent; the ports are free", async () => {
    const id = (await ports()).find((p) => p.key === `tcp:127.0.0.1:${base}`)!.id;
    expect(cli(["unpublish", id]).out).toBe(`${id}: unpublished\n`);
    expect(cli(["unpublish", id])).toMatchObject({ code: 1, err: expect.stringContaining(`${id}: was not published`) });
    await until(() => canBind("127.0.0.1", base), "the port to be free");
    expect(cli(["unpublish", `${base + 1}:web:80`]).out).toBe(`${base + 1}:web:80: unpublished\n`);
    await until(() => canBind("127.0.0.1", base + 1) && canBind("::1", base + 1), "both loopbacks free");
    const r = await call("DELETE", `/v1/ports/c-0123456789ab`);
    expect(r.status).toBe(400);
  });

  test("HTTP conventions through the binary's socket (curl): 405 with Allow, 415, Location, GET and DELETE by id, 404s, issues, the OpenAPI document", async () => {
    const u = "http://localhost";
    const openFds = () => (curlApi([`${u}/v1/health`]).body.fds as { open: number }).open;
    const fdsBefore = openFds();
    expect(curlApi(["-X", "PUT", `${u}/v1/ports`])).toMatchObject({
      status: 405,
      headers: { allow: "GET, HEAD, POST, OPTIONS" },
      body: { code: "E_METHOD_NOT_ALLOWED" },
    });
    expect(curlApi(["-X", "DELETE", `${u}/v1/health`]).headers.allow).toBe("GET, HEAD, OPTIONS");
    expect(curlApi(["-X", "POST", `${u}/v1/ports/abc`]).headers.allow).toBe("GET, HEAD, DELETE, OPTIONS");
    expect(curlApi([`${u}/v1/nope`])).toMatchObject({ status: 404, body: { code: "E_NOT_FOUND" } });
    const p = base + 12;
    const spec = `${p}:${srvIp}:7001`;
    // curl -d sends application/x-www-form-urlencoded: refused, nothing published
    const form = curlApi(["-d", JSON.stringify({ spec }), `${u}/v1/ports`]);
    expect([form.status, form.headers.accept, form.body.code]).toEqual([
      415,
      "application/json",
      "E_UNSUPPORTED_MEDIA_TYPE",
    ]);
    expect(canBind("127.0.0.1", p)).toBe(true);
    const bad = curlApi(["--json", JSON.stringify({ spec: p, proxyProtocol: "yes" }), `${u}/v1/ports`]);
    expect([bad.status, bad.body.issues]).toEqual([
      400,
      [
        { path: "spec", message: "expected a string, got a number" },
        { path: "proxyProtocol", message: "expected true or false, got a string" },
      ],
    ]);
    const made = curlApi(["--json", JSON.stringify({ spec }), `${u}/v1/ports`]);
    expect(made.status).toBe(201);
    const id = made.body.id as string;
    expect(made.headers.location).toBe(`/v1/ports/${id}`);
    const entry = curlApi([`${u}${made.headers.location}`]);
    expect(entry.status).toBe(200);
    expect((entry.body.ports as PortState[]).map((x) => x.host).sort()).toEqual([`127.0.0.1:${p}`, `[::1]:${p}`]);
    expect(curlApi(["-X", "DELETE", `${u}${made.headers.location}`])).toMatchObject({
      status: 200,
      body: { id, removed: true },
    });
    // an unknown id: 404 from the API, "was not published" and exit 1 from the CLI
    expect(curlApi(["-X", "DELETE", `${u}/v1/ports/${id}`])).toMatchObject({
      status: 404,
      body: { code: "E_NOT_FOUND" },
    });
    expect(curlApi([`${u}/v1/ports/${id}`])).toMatchObject({ status: 404, body: { code: "E_NOT_FOUND" } });
    expect(cli(["unpublish", id])).toMatchObject({
      code: 1,
      err: `edgeport unpublish: ${id}: was not published (see edgeport ls)\n`,
    });
    await until(() => canBind("127.0.0.1", p) && canBind("::1", p), "both loopbacks free");
    // the refused requests leave no descriptor behind
    await until(() => openFds() <= fdsBefore, "the daemon's descriptors back to where they were");
    const doc = curlApi([`${u}/v1/openapi.json`]);
    expect(doc.status).toBe(200);
    expect(doc.body).toEqual(
      JSON.parse(readFileSync(join(dirname(import.meta.dir), "..", "docs", "openapi.json"), "utf8")),
    );
  });

  test("status, health and /metrics: Prometheus text whose counters move with traffic", async () => {
    expect(cli(["status"]).out).toMatch(
      /daemon: {2}up .*\npipe: {4}up, edgeport peer.*\nengine: {2}following unix:.*\nbinding: local-default\nports: {3}\d+ published/,
    );
    const health = (
      await call<{ ok: boolean; pipe: boolean; engine: boolean; fds: { limit: number; open: number }; pid: number }>(
        "GET",
        "/v1/health",
      )
    ).body;
    expect(health).toEqual({
      ok: true,
      pipe: true,
      engine: true,
      fds: expect.objectContaining({ exhausted: false }),
      pid: expect.any(Number),
    });
    expect(health.fds.limit).toBeGreaterThan(health.fds.open);
    const p = base + 3;
    expect(cli(["publish", `127.0.0.1:${p}:${srvIp}:7001`]).code).toBe(0);
    const metric = async () => {
      const text = await (await fetch("http://localhost/metrics", { unix: api } as RequestInit)).text();
      for (const l of text.trim().split("\n"))
        expect(l).toMatch(
          /^(# (HELP|TYPE) (edgeport|process)_\w+ .+|(edgeport|process)_\w+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? [\d.e+]+)$/,
        );
      const m = new RegExp(
        `edgeport_bytes_total\\{proto="tcp",address="127\\.0\\.0\\.1",port="${p}",source="ad-hoc",container="",direction="in"\\} (\\d+)`,
      ).exec(text);
      return Number(m?.[1]);
    };
    const before = await metric();
    expect(before).toBe(0);
    expect(await echoOnce(p, "x".repeat(1000))).toBe(true);
    expect(await metric()).toBe(1000);
    const dbg = (await call<{ events: { msg: string }[] }>("GET", "/v1/debug/state")).body;
    expect(dbg.events.some((e) => e.msg.startsWith("pipe up"))).toBe(true);
  });

  test("the config file: flags win over it (binding), reserved ports are refused, ignored containers are not published", async () => {
    expect(hasLog(runLog, /binding local-default, firewall none/)).toBe(true);
    const r = await call("POST", "/v1/ports", { spec: `${base + 15}:${srvIp}:7001` });
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(new RegExp(`port ${base + 15} is reserved`));
    const a = base + 16;
    await tb.dockerOk([
      "run",
      "-d",
      "--name",
      "ignored",
      "--label",
      "edgeport.ignore=yes",
      "-p",
      `127.0.0.1:${a}:80`,
      "edgeport-busybox:test",
      "httpd",
      "-f",
      "-p",
      "80",
      "-h",
      "/www",
    ]);
    await tb.dockerOk([
      "run",
      "-d",
      "--name",
      "kept",
      "-p",
      `127.0.0.1:${a + 1}:80`,
      "edgeport-busybox:test",
      "httpd",
      "-f",
      "-p",
      "80",
      "-h",
      "/www",
    ]);
    await until(() => curl(a + 1) === INDEX_HTML, "the kept container");
    expect(
      hasLog(
        runLog,
        new RegExp(
          `tcp:127\\.0\\.0\\.1:${a} of container ignored not published: container ignored is ignored by the config \\(ignore\\.labels "edgeport\\.ignore"\\)`,
        ),
      ),
    ).toBe(true);
    expect((await ports()).some((p) => p.key === `tcp:127.0.0.1:${a}`)).toBe(false);
    expect(canBind("127.0.0.1", a)).toBe(true);
    await tb.dockerOk(["rm", "-f", "ignored", "kept"]);
  });

  test("a TCP API needs the token and refuses a foreign Host and Origin", async () => {
    const port = base + 10;
    const tokenFile = writeToken(join(tb.dir, "api-token"), "api-token-0123456789abcdef");
    const log = join(tb.dir, "run-tcp.log");
    const d = spawnHost(
      [
        "run",
        "--engine",
        "none",
        "--relay",
        `unix://${fwdSock}`,
        "--api",
        `tcp://127.0.0.1:${port}`,
        "--api-token-file",
        tokenFile,
        "--firewall",
        "none",
      ],
      log,
    );
    try {
      await until(() => hasLog(log, /api tcp:\/\/127\.0\.0\.1/), "the TCP API");
      const get = (headers: Record<string, string>) =>
        fetch(`http://127.0.0.1:${port}/v1/ports`, { headers }).then((r) => r.status);
      const auth = { authorization: "Bearer api-token-0123456789abcdef" };
      expect(await get({})).toBe(401);
      expect(await get({ authorization: "Bearer nope" })).toBe(401);
      expect(await get({ ...auth, host: `attacker.example:${port}` })).toBe(403);
      expect(await get({ ...auth, origin: "http://attacker.example" })).toBe(403);
      expect(await get(auth)).toBe(200);
      const viaCli = Bun.spawnSync([
        EDGEPORT,
        "publish",
        `127.0.0.1:${base + 11}:${srvIp}:7001`,
        "--api",
        `tcp://127.0.0.1:${port}`,
        "--api-token-file",
        tokenFile,
      ]);
      expect(viaCli.stdout.toString()).toMatch(/published: 127\.0\.0\.1:\d+->/);
      expect(await echoOnce(base + 11)).toBe(true);
    } finally {
      await stopProcess(d);
    }
    const noToken = Bun.spawnSync([
      EDGEPORT,
      "run",
      "--engine",
      "none",
      "--relay",
      `unix://${fwdSock}`,
      "--api",
      `tcp://127.0.0.1:${port}`,
    ]);
    expect(noToken.exitCode).toBe(2);
    expect(noToken.stderr.toString()).toMatch(/--api tcp:\/\/\.\.\. needs --api-token-file/);
  });
});
