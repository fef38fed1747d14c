/**
 * HTTP over channels of the pipe (src/relay/host/channel-stream.ts), as `edgeport run --engine
 * vm:///path` asks the engine: a real forwarder given the engine's socket (and no --allow) dials
 * it and nothing else; a large answer read slowly arrives whole (the channel's window holds the VM
 * back); a pipe that is down, or lost under an open stream, is the request's error, saying so.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola";
import { createDialPolicy } from "../../../src/relay/forwarder/dial-policy.ts";
import { type Forwarder, startForwarder } from "../../../src/relay/forwarder/forwarder.ts";
import { channelStreams } from "../../../src/relay/host/channel-stream.ts";
import { createRelayClient, type RelayClient } from "../../../src/relay/host/relay-client.ts";
import { parseTransportUrl } from "../../../src/relay/transports/url.ts";
import { streamRequest } from "../../../src/shared/pipe-http-client.ts";
import { until } from "../../helpers/until.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-chstream-"));
const engineSock = join(dir, "docker.sock");
const otherSock = join(dir, "other.sock");
const quiet = createConsola({ level: 0 });
const BIG = Buffer.alloc(8 * 1024 * 1024, 0);
for (let i = 0; i < BIG.length; i += 4096) BIG.writeUInt32LE((i * 2654435761) >>> 0, i);
let engine: ReturnType<typeof Bun.serve>;
let other: ReturnType<typeof Bun.serve>;
let fwd: Forwarder;
let relay: RelayClient;
let streamsOpen = 0;

function serve(path: string): ReturnType<typeof Bun.serve> {
  return Bun.serve({
    unix: path,
    fetch(req) {
      const p = new URL(req.url).pathname;
      if (p === "/big") return new Response(BIG);
      if (p === "/events")
        return new Response(
          new ReadableStream({
            start(c) {
              streamsOpen++;
              c.enqueue(new TextEncoder().encode('{"Action":"start"}\n'));
            },
            cancel() {
              streamsOpen--;
            },
          }),
        );
      return new Response("OK");
    },
  });
}

function startFwd(): Forwarder {
  return startForwarder({
    listen: parseTransportUrl(`unix://${join(dir, "fwd.sock")}`, "listen"),
    policy: createDialPolicy({ allow: [], engineSocket: engineSock }),
    log: quiet,
  });
}

beforeAll(() => {
  engine = serve(engineSock);
  other = serve(otherSock);
  fwd = startFwd();
  relay = createRelayClient({
    url: parseTransportUrl(fwd.address, "connect"),
    log: quiet,
    backoffMinMs: 10,
    backoffMaxMs: 50,
  });
});
afterAll(() => {
  relay.close();
  fwd.close();
  engine.stop(true);
  other.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, what: string, signal?: AbortSignal) =>
  streamRequest(channelStreams(relay, { proto: "unix", path }, 1000), `http://localhost${what}`, { signal });
const channels = () => relay.current?.channels.size ?? 0;

test("the forwarder's engine socket is dialled with no --allow; another path, or the same one spelled otherwise, is refused", async () => {
  const ok = await get(engineSock, "/_ping");
  expect(await ok.text()).toBe("OK");
  for (const path of [otherSock, `${dir}/./docker.sock`]) {
    const err = await get(path, "/_ping").catch((e: Error) => e);
    expect((err as Error).message).toBe(
      `unix://${path} in the VM: forbidden: Unix socket destinations are refused unless allowed with --allow unix://${path}`,
    );
  }
  await until(() => channels() === 0, "every channel closed");
});

test("8 MiB read slowly arrives whole: the channel holds the rest back, then every channel is closed", async () => {
  const res = await get(engineSock, "/big");
  const hash = createHash("sha256");
  let n = 0;
  for await (const chunk of res.body!) {
    hash.update(chunk);
    n += chunk.length;
    if (n < 2 * 1024 * 1024) await Bun.sleep(1); // a slow reader for the first part
  }
  expect(n).toBe(BIG.length);
  expect(hash.digest("hex")).toBe(createHash("sha256").update(BIG).digest("hex"));
  await until(() => channels() === 0, "every channel closed");
});

test("an open stream ended by the signal closes its channel and the engine's connection", async () => {
  const ac = new AbortController();
  const res = await get(engineSock, "/events", ac.signal);
  const reader = res.body!.getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toBe('{"Action":"start"}\n');
  ac.abort();
  await expect(reader.read()).rejects.toThrow();
  await until(() => streamsOpen === 0 && channels() === 0, "the stream and its channel closed");
});

test("the pipe lost under an open stream, then down: both errors say the pipe is down; back up, requests pass again", async () => {
  const res = await get(engineSock, "/events");
  const reader = res.body!.getReader();
  await reader.read();
  fwd.close();
  const lost = await reader.read().catch((e: Error) => e);
  expect((lost as Error).message).toMatch(new RegExp(`^the pipe to unix://${dir}/fwd\\.sock is down \\(`));
  const down = await get(engineSock, "/_ping").catch((e: Error) => e);
  expect((down as Error).message).toMatch(
    new RegExp(`^the pipe to unix://${dir}/fwd\\.sock is down \\(.*\\); waited 1000 ms$`),
  );
  fwd = startFwd();
  expect(await (await get(engineSock, "/_ping")).text()).toBe("OK");
});
