/**
 * The Windows build under Wine: `edgeport.exe forwarder --listen npipe:...` and `edgeport.exe publish
 * --relay npipe:...`, the named pipe in both roles, relaying to a Linux destination on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prngStream } from "../e2e/fixtures/prng.ts";
import { hasLog, until, waitForListener } from "../helpers/e2e.ts";
import { canBind, connectClient, freePortRange } from "../helpers/tcp-client.ts";
import { ctrlC, download as get, kill, sha, spawnWin, startDestination, waitLog } from "../helpers/wine.ts";

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), "edgeport-wine-relay-"));
const pipe = `npipe:////./pipe/edgeport-test-relay-${process.pid}`;
const dest = startDestination();
const base = freePortRange(2);
const closedPort = freePortRange(1);
let fwd: Bun.Subprocess | null = null;
let pub: Bun.Subprocess | null = null;
const fwdLog = join(dir, "forwarder.log");
const pubLog = join(dir, "publish.log");

const startForwarder = async () => {
  fwd = spawnWin(["forwarder", "--listen", pipe, "--allow", "127.0.0.1/32"], fwdLog);
  await waitLog(fwdLog, /^listening on npipe:/, "the Windows forwarder to listen");
};

const download = (n: number, seed: number) => get(base, n, seed);

beforeAll(async () => {
  await startForwarder();
  pub = spawnWin(
    [
      "publish",
      "--relay",
      pipe,
      `127.0.0.1:${base}:127.0.0.1:${dest.port}`,
      `127.0.0.1:${base + 1}:127.0.0.2:${closedPort}`,
    ],
    pubLog,
  );
  await waitForListener(base, "127.0.0.1", 20_000);
  await waitLog(pubLog, /^pipe up: npipe:/, "the pipe up");
});

afterAll(async () => {
  await kill(pub);
  await kill(fwd);
  dest.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("npipe: forwarder listening, publish dialling, both edgeport.exe under Wine", () => {
  test("30 MiB from the destination arrive whole (sha256)", async () => {
    const t0 = performance.now();
    const r = await download(30 * MiB, 7);
    console.log(`30 MiB down through the named pipe in ${Math.round(performance.now() - t0)} ms`);
    expect(r.ending).toBeNull();
    expect(r.received).toBe(30 * MiB);
    expect(r.sha).toBe(sha(prngStream(7), 30 * MiB));
  });

  test("30 MiB to the destination arrive whole, and the answer after the half-close comes back", async () => {
    const c = await connectClient(base);
    const t0 = performance.now();
    await c.write(new TextEncoder().encode("put\n"));
    await c.writeStream(prngStream(11), 30 * MiB);
    c.socket.shutdown(); // half-close: the destination answers only after our FIN reached it
    expect(await c.closed).toBeNull();
    console.log(`30 MiB up through the named pipe in ${Math.round(performance.now() - t0)} ms`);
    expect(c.text().trim()).toBe(sha(prngStream(11), 30 * MiB));
  });

  // A destination the forwarder's --allow does not cover. (A closed port cannot be the refused
  // destination here: Wine 8 reports a connect to a closed loopback port as connected, then closes.)
  test("a refused destination closes that connection only, and the host log says why", async () => {
    const c = await connectClient(base + 1);
    await c.write(new TextEncoder().encode("get 10 1\n")).catch(() => undefined);
    await c.closed;
    expect(c.received).toBe(0);
    await waitLog(fwdLog, new RegExp(`^refused channel \\d+ to tcp/127\\.0\\.0\\.2:${closedPort}: `), "the refusal");
    await waitLog(
      pubLog,
      new RegExp(`:${base + 1} <- 127\\.0\\.0\\.1:\\d+: .*127\\.0\\.0\\.2`),
      "the reason on the host",
    );
    expect((await download(1000, 3)).received).toBe(1000);
  });

  test("the forwarder restarted: the host keeps its listener, and the next connection goes through", async () => {
    expect(await ctrlC(fwd!)).toBe(0);
    await waitLog(pubLog, /^pipe down/, "the host to see the pipe down");
    expect(canBind("127.0.0.1", base)).toBe(false); // still published while the pipe is down
    await startForwarder();
    await until(async () => (await download(4096, 5)).received === 4096, "a download through the new pipe", 30_000);
    const r = await download(MiB, 9);
    expect(r.sha).toBe(sha(prngStream(9), MiB));
    expect(hasLog(pubLog, /pipe up: npipe:/)).toBe(true);
  });
});
