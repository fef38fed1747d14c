/**
 * The engine client over real sockets against a small local HTTP server that answers like
 * dockerd 20.10 (captured shapes). Checks version negotiation, validation, and that no request
 * ever goes through HTTP_PROXY/HTTPS_PROXY. Each test runs twice: over fetch on tcp, and over
 * pipe-http (the named-pipe path) on a unix socket served by the same Bun.serve, whose streamed
 * /events answer is chunked as dockerd's is; and a third time as vm:///path, over channels of a
 * real pipe to a forwarder that was given that socket as its --engine (and no --allow).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola";
import { createEngine, type Engine, engineRequest, parseEngineUrl, pipeHttp } from "../../src/events/engine.ts";
import { createDialPolicy } from "../../src/relay/forwarder/dial-policy.ts";
import { type Forwarder, startForwarder } from "../../src/relay/forwarder/forwarder.ts";
import { channelStreams } from "../../src/relay/host/channel-stream.ts";
import { createRelayClient, type RelayClient } from "../../src/relay/host/relay-client.ts";
import { parseTransportUrl } from "../../src/relay/transports/url.ts";
import { streamRequest } from "../../src/shared/pipe-http-client.ts";
import { until } from "../helpers/until.ts";

let engine: ReturnType<typeof Bun.serve>;
let engineUnix: ReturnType<typeof Bun.serve>;
const dir = mkdtempSync(join(tmpdir(), "edgeport-engine-"));
const sock = join(dir, "docker.sock");
/** /events streams that are open now */
let openStreams = 0;
let proxy: ReturnType<typeof Bun.serve>;
let fwd: Forwarder;
let relay: RelayClient;
let proxied = 0;
const paths: string[] = [];
let apiVersion = "1.40";
const saved = {
  HTTP_PROXY: process.env.HTTP_PROXY,
  HTTPS_PROXY: process.env.HTTPS_PROXY,
  http_proxy: process.env.http_proxy,
  NO_PROXY: process.env.NO_PROXY,
  no_proxy: process.env.no_proxy,
};

beforeAll(() => {
  proxy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => {
      proxied++;
      return new Response("proxied", { status: 502 });
    },
  });
  const fetch = (req: Request): Response => {
    const url = new URL(req.url);
    paths.push(url.pathname + url.search);
    if (url.pathname === "/_ping") return new Response("OK", { headers: { "Api-Version": apiVersion } });
    if (url.pathname === "/version")
      return Response.json({ Version: "20.10.24", ApiVersion: apiVersion, MinAPIVersion: "1.12", Os: "linux" });
    if (url.pathname.endsWith("/containers/json"))
      return Response.json([{ Id: "abc", State: "running", Names: ["/web"] }]);
    if (url.pathname.endsWith("/containers/abc/json"))
      return Response.json({
        Id: "abc",
        Name: "/web",
        State: { Running: true, Paused: false },
        HostConfig: {},
        NetworkSettings: {},
        Extra: 1,
      });
    if (url.pathname.endsWith("/containers/junk/json")) return Response.json({ Id: 42 });
    if (url.pathname.endsWith("/containers/gone/json")) return new Response("no such container", { status: 404 });
    if (url.pathname.endsWith("/events") && url.searchParams.get("since") === "open") {
      const body = new ReadableStream({
        start(c) {
          openStreams++;
          c.enqueue(new TextEncoder().encode('{"Type":"container","Action":"start","Actor":{"ID":"abc"}}\n'));
        },
        cancel() {
          openStreams--;
        },
      });
      return new Response(body, { headers: { "content-type": "application/json" } });
    }
    if (url.pathname.endsWith("/events")) {
      const body = new ReadableStream({
        start(c) {
          c.enqueue(
            new TextEncoder().encode(
              '{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web"}},"time":1795363385,"timeNano":1795363385487133157}\n{"Type":"network","Action":"con',
            ),
          );
          c.enqueue(
            new TextEncoder().encode('nect","Actor":{"ID":"n1","Attributes":{"container":"abc"}},"time":1795363386}\n'),
          );
          c.close();
        },
      });
      return new Response(body);
    }
    return new Response("not found", { status: 404 });
  };
  engine = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch });
  engineUnix = Bun.serve({ unix: sock, fetch });
  const quiet = createConsola({ level: 0 });
  fwd = startForwarder({
    listen: parseTransportUrl(`unix://${join(dir, "fwd.sock")}`, "listen"),
    policy: createDialPolicy({ allow: [], engineSocket: sock }),
    log: quiet,
  });
  relay = createRelayClient({ url: parseTransportUrl(fwd.address, "connect"), log: quiet });
  process.env.HTTP_PROXY = process.env.HTTPS_PROXY = process.env.http_proxy = `http://127.0.0.1:${proxy.port}`;
});
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  relay.close();
  fwd.close();
  engine.stop(true);
  engineUnix.stop(true);
  proxy.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const ways: [string, () => Engine][] = [
  ["fetch over tcp", () => createEngine(`tcp://127.0.0.1:${engine.port}`)],
  ["pipe-http over a unix socket", () => createEngine(`unix://${sock}`, 5000, undefined, pipeHttp(sock))],
  [
    "pipe-http over channels of the pipe (vm:///path)",
    () => {
      const streams = channelStreams(relay, { proto: "unix", path: sock }, 2000);
      return createEngine(`vm://${sock}`, 5000, undefined, (u, init) => streamRequest(streams, u, init));
    },
  ],
];

describe.each(ways)("%s", (_way, connect) => {
  test("negotiates down to an older engine's API version and uses it for every call, never via the proxy", async () => {
    const e = connect();
    expect(await e.negotiate()).toEqual({ apiVersion: "1.40", engineVersion: "20.10.24" });
    expect(await e.runningContainers()).toEqual(["abc"]);
    const c = await e.inspect("abc");
    expect(c?.Name).toBe("/web");
    expect("Extra" in (c as object)).toBe(false); // unknown fields stripped
    expect(await e.inspect("gone")).toBeNull();
    expect(paths).toContain("/v1.40/containers/json");
    expect(proxied).toBe(0);
  });

  test("a newer engine is spoken to in edgeport's own version", async () => {
    apiVersion = "1.47";
    const e = connect();
    expect((await e.negotiate()).apiVersion).toBe("1.41");
    apiVersion = "1.40";
  });

  test("an answer of the wrong shape is an error naming the field", async () => {
    const e = connect();
    await expect(e.inspect("junk")).rejects.toThrow(/unexpected inspect of junk: Id/);
  });

  test("events are parsed across chunk boundaries", async () => {
    const e = connect();
    const got: string[] = [];
    await e.events({
      since: "1795363000",
      signal: new AbortController().signal,
      onEvent: (ev) => got.push(`${ev.Type} ${ev.Action} ${ev.Actor.Attributes?.container ?? ev.Actor.ID}`),
    });
    expect(got).toEqual(["container start abc", "network connect abc"]);
    expect(paths.some((p) => p.includes("/events?filters=") && p.includes("since=1795363000"))).toBe(true);
    expect(proxied).toBe(0);
  });

  test("an events stream that stays open is ended by the signal, and nothing is left open", async () => {
    const e = connect();
    const fds = () => readdirSync("/proc/self/fd").length;
    const before = fds();
    for (let i = 0; i < 20; i++) {
      const ac = new AbortController();
      const got: string[] = [];
      const done = e.events({ since: "open", signal: ac.signal, onEvent: (ev) => got.push(ev.Action) });
      await until(() => got.length === 1, "the first event");
      ac.abort();
      expect(await done.catch((err: Error) => err.name)).toBe("AbortError");
    }
    await until(() => openStreams === 0, "the engine to see every stream closed");
    await until(() => fds() <= before + 1, "descriptors back to baseline");
  });
});

test("an unreachable engine is an error naming it", async () => {
  const e = createEngine("unix:///nonexistent/docker.sock", 500);
  await expect(e.negotiate()).rejects.toThrow(/engine unix:\/\/\/nonexistent\/docker\.sock unreachable/);
});

test("a named pipe URL is reached by pipe-http (Bun.connect), which opens pipes; fetch cannot", async () => {
  // on Linux \\.\pipe\NAME is a relative file name: both fail, each with its own words
  const err = await createEngine("npipe:////./pipe/edgeport-no-such-engine", 2000)
    .negotiate()
    .catch((e) => e);
  expect((err as Error).message).toBe(
    "engine npipe:////./pipe/edgeport-no-such-engine unreachable: no socket there (ENOENT)",
  );
  expect(((err as Error).cause as { syscall?: string }).syscall).toBe("connect");
  const viaFetch = await engineRequest("unix:///nonexistent/docker.sock")("http://localhost/_ping", {
    signal: AbortSignal.timeout(2000),
  }).catch((e) => e);
  expect((viaFetch as Error).message).toMatch(/Was there a typo/); // fetch's words: unix sockets stay on fetch
});

test.each([
  ["unix:///var/run/docker.sock", { base: "http://localhost", unix: "/var/run/docker.sock" }],
  ["npipe:////./pipe/docker_engine", { base: "http://localhost", unix: "\\\\.\\pipe\\docker_engine" }],
  ["tcp://127.0.0.1:2375", { base: "http://127.0.0.1:2375" }],
])("engine URL %p", (url, want) => {
  expect(parseEngineUrl(url)).toEqual(want);
});
test.each([
  ["vm:///var/run/docker.sock", { base: "http://localhost", vm: "/var/run/docker.sock" }],
  ["vm:///d", { base: "http://localhost", vm: "/d" }],
])("engine URL in the VM %p", (url, want) => {
  expect(parseEngineUrl(url)).toEqual(want);
});
test.each([
  [
    "vm://relative",
    'engine URL "vm://relative": the path inside the VM must be absolute, e.g. vm:///var/run/docker.sock',
  ],
  ["vm://", 'engine URL "vm://": the path inside the VM must be absolute, e.g. vm:///var/run/docker.sock'],
  ["vm:///", 'engine URL "vm:///" names no socket inside the VM; e.g. vm:///var/run/docker.sock'],
  ["vm:////", 'engine URL "vm:////" names no socket inside the VM; e.g. vm:///var/run/docker.sock'],
])("bad engine URL in the VM %p", (url, message) => {
  expect(() => parseEngineUrl(url)).toThrow(message);
});
test("a vm:/// engine without the pipe to reach it is refused, not dialled here", () => {
  expect(() => createEngine("vm:///var/run/docker.sock")).toThrow(/inside the VM: it is reached through the pipe/);
});
test.each(["unix://relative", "http://127.0.0.1:2375", "tcp://nohostport", ""])("bad engine URL %p", (url) => {
  expect(() => parseEngineUrl(url)).toThrow(/unix:\/\/\/path\/docker\.sock, tcp:\/\/HOST:PORT/);
});
