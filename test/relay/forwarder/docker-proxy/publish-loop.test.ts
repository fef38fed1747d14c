/**
 * The docker-proxy's publish loop with its real client against a real control socket: the first
 * attempt decides dockerd's status, a closed channel is published again, the stop signal ends the
 * lease.
 */
import { afterEach, expect, test } from "bun:test";
import type { ControlRequest } from "../../../../src/relay/control/protocol.ts";
import { requestPublish } from "../../../../src/relay/forwarder/docker-proxy/control-client.ts";
import { holdPublished } from "../../../../src/relay/forwarder/docker-proxy/publish-loop.ts";
import { type Answer, type ControlServer, controlServer } from "../../../helpers/control-server.ts";
import { until } from "../../../helpers/until.ts";

const BINDING = {
  proto: "udp",
  hostIp: "0.0.0.0",
  hostPort: 5353,
  containerIp: "172.17.0.3",
  containerPort: 53,
} as const;
const WHAT = "0.0.0.0:5353 -> 172.17.0.3:53/udp";
const PUBLISHED: Answer = { ok: true, id: "e1", ports: ["127.0.0.1:5353"] };

let server: ControlServer | undefined;
afterEach(() => server?.stop());

/** the loop, started against `srv`, with what it told dockerd and logged */
function start(srv: ControlServer) {
  const status: string[] = [];
  const lines: string[] = [];
  const stop = new AbortController();
  const note = (level: string) => (msg: string) => lines.push(`${level} ${msg}`);
  const code = holdPublished({
    request: () => requestPublish(srv.path, BINDING, 2000),
    status: { ready: () => status.push("0"), failed: (why) => status.push(`1 ${why}`) },
    signal: stop.signal,
    log: { info: note("info"), warn: note("warn"), error: note("error") },
    what: WHAT,
    control: srv.url,
    backoff: { firstMs: 10, maxMs: 40 },
  });
  return { code, status, lines, stop };
}

test("a first refusal is final: dockerd is told why, the exit code is 1, the channel is closed", async () => {
  server = controlServer(() => ({ ok: false, error: "port 5353 is in use" }));
  const run = start(server);
  expect(await run.code).toBe(1);
  expect(run.status).toEqual([`1 ${WHAT}: the host refused: port 5353 is in use`]);
  expect(server.requests).toHaveLength(1);
  await until(() => server?.open.size === 0, "the refused channel to close");
});

test("no control socket at the first attempt: dockerd is told, naming the socket and the errno", async () => {
  server = controlServer(() => "silent");
  server.stop();
  const run = start(server);
  expect(await run.code).toBe(1);
  expect(run.status).toEqual([`1 ${WHAT}: cannot reach the host through ${server.url}: ENOENT`]);
});

test("published, the channel breaks, refused for a while, published again; stop releases it", async () => {
  const answers: Answer[] = [PUBLISHED, { ok: false, error: "the pipe to the host is down" }, PUBLISHED];
  server = controlServer((_req: ControlRequest, n) => answers[Math.min(n, answers.length - 1)] ?? "silent");
  const srv = server;
  const run = start(srv);
  await until(() => run.status.length === 1 && srv.open.size === 1, "the first publish");
  expect(run.status).toEqual(["0"]);
  for (const s of srv.open) s.end(); // the pipe broke: the host ends the channel
  await until(() => srv.requests.length === 3 && srv.open.size === 1, "the proxy to publish again");
  expect(srv.requests.every((r) => r.op === "publish")).toBe(true);
  expect(
    run.lines.some((l) => l.startsWith(`warn ${WHAT}: the host refused: the pipe to the host is down; retrying`)),
  ).toBe(true);
  expect(run.status).toEqual(["0"]); // dockerd hears once
  run.stop.abort();
  expect(await run.code).toBe(0);
  await until(() => srv.open.size === 0, "the lease to be released");
  expect(run.lines.at(-1)).toBe(`info ${WHAT}: unpublished`);
});

test("stop while waiting to retry ends the loop at once", async () => {
  const answers: Answer[] = [PUBLISHED, { ok: false, error: "the daemon is starting" }];
  server = controlServer((_req, n) => answers[Math.min(n, 1)] ?? "silent");
  const srv = server;
  const status: string[] = [];
  const stop = new AbortController();
  const code = holdPublished({
    request: () => requestPublish(srv.path, BINDING, 2000),
    status: { ready: () => status.push("0"), failed: (why) => status.push(`1 ${why}`) },
    signal: stop.signal,
    log: { info() {}, warn() {}, error() {} },
    what: WHAT,
    control: srv.url,
    backoff: { firstMs: 60_000, maxMs: 60_000 }, // a retry would wait a minute
  });
  await until(() => srv.open.size === 1, "the first publish");
  for (const s of srv.open) s.end();
  await until(() => srv.requests.length === 2, "the refused second attempt");
  const t0 = performance.now();
  stop.abort();
  expect(await code).toBe(0);
  expect(performance.now() - t0).toBeLessThan(1000);
  expect(status).toEqual(["0"]);
});
