/**
 * --spin's activity hook is injected into the transports (issue 15, item 6), not a global they
 * import: every chunk a pipe receives calls the hook of whoever opened the pipe, on both ends of a
 * real unix socket and over exec:'s stdio.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Pipe } from "../../../src/relay/mux/pipe.ts";
import { dialPipe, listenPipes } from "../../../src/relay/transports/index.ts";
import { parseTransportUrl } from "../../../src/relay/transports/url.ts";
import { until } from "../../helpers/until.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-activity-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A pipe end that records what it received and keeps the Pipe to write on. */
function recorder() {
  const got: Uint8Array[] = [];
  let pipe: Pipe | null = null;
  const onPipe = (p: Pipe) => {
    pipe = p;
    return { data: (c: Uint8Array) => void got.push(c), drain() {}, closed() {} };
  };
  return { got, onPipe, pipe: () => pipe };
}

test("unix: each end's own hook is called for what that end receives", async () => {
  const counts = { listen: 0, dial: 0 };
  const url = parseTransportUrl(`unix://${join(dir, "p.sock")}`, "listen");
  const server = recorder();
  const listener = listenPipes(url, server.onPipe, () => counts.listen++);
  const client = recorder();
  try {
    await dialPipe(parseTransportUrl(`unix://${join(dir, "p.sock")}`, "connect"), client.onPipe, () => counts.dial++);
    await until(() => server.pipe() !== null, "the accepted pipe");
    expect(counts).toEqual({ listen: 0, dial: 0 });
    client.pipe()!.write(new TextEncoder().encode("to the listener"));
    await until(() => server.got.length > 0, "bytes at the listener");
    expect(counts.listen).toBe(server.got.length);
    expect(counts.dial).toBe(0);
    server.pipe()!.write(new TextEncoder().encode("back"));
    await until(() => client.got.length > 0, "bytes at the dialler");
    expect(counts.dial).toBe(client.got.length);
  } finally {
    client.pipe()?.close();
    listener.close();
  }
});

test("exec: the hook is called for what the child writes", async () => {
  let calls = 0;
  const client = recorder();
  await dialPipe(parseTransportUrl("exec:echo hello", "connect"), client.onPipe, () => calls++);
  await until(() => client.got.length > 0, "the child's output");
  expect(calls).toBe(client.got.length);
  client.pipe()?.close();
});
