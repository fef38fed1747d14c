/**
 * `edgeport.exe run --engine npipe:...` following a Docker Engine on its named pipe, as on Windows
 * with Docker Desktop (\\.\pipe\docker_engine). The engine is a fake one built as a Windows program
 * (fixtures/fake-engine.ts), so both ends of the pipe are Windows processes under Wine; behind
 * `run` is `edgeport.exe forwarder` on a second pipe, relaying to a Linux destination on 127.0.0.1.
 * A start event publishes the container's port, a die event removes it, and the /events stream
 * stays open across resyncs without being reopened.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prngStream } from "../e2e/fixtures/prng.ts";
import { hasLog, logLines, until, waitForListener } from "../helpers/e2e.ts";
import { canBind, freePortRange } from "../helpers/tcp-client.ts";
import { ctrlC, download, kill, sha, spawnWin, startDestination, WINE, waitLog } from "../helpers/wine.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-wine-engine-"));
const enginePipe = `edgeport-test-engine-${process.pid}`;
const engineUrl = `npipe:////./pipe/${enginePipe}`;
const fwdPipe = `npipe:////./pipe/edgeport-test-engine-fwd-${process.pid}`;
const dest = startDestination();
const port = freePortRange(1);
const runLog = join(dir, "run.log");
let engine: Bun.Subprocess | null = null;
let fwd: Bun.Subprocess | null = null;
let run: Bun.Subprocess | null = null;
let control = "";

type Stats = { eventsOpened: number; eventsOpen: number; lists: number; inspects: number; requests: number };
const stats = async (): Promise<Stats> => (await fetch(`${control}/stats`)).json() as Promise<Stats>;
const ctl = async (what: string): Promise<{ ok: boolean; streams: number }> => {
  const res = await fetch(`${control}${what}`, { method: "POST" });
  expect(res.status).toBe(200);
  return (await res.json()) as { ok: boolean; streams: number };
};

const exe = join(dir, "fake-engine.exe");
let engineStarts = 0;
/** Starts fake-engine.exe on the engine pipe; waits for its control port. */
async function startEngine(): Promise<void> {
  const out = join(dir, `engine-${++engineStarts}.out`);
  const fd = openSync(out, "a");
  engine = Bun.spawn([WINE, exe, `\\\\.\\pipe\\${enginePipe}`], { stdout: fd, stderr: fd, stdin: "ignore" });
  await until(() => /control \d+/.test(readFileSync(out, "utf8")), "the fake engine's control port", 20_000);
  control = `http://127.0.0.1:${/control (\d+)/.exec(readFileSync(out, "utf8"))![1]}`;
}

beforeAll(async () => {
  const src = join(import.meta.dir, "fixtures", "fake-engine.ts");
  const build = Bun.spawnSync(["bun", "build", "--compile", "--target=bun-windows-x64", src, "--outfile", exe]);
  expect(build.exitCode).toBe(0);
  await startEngine();
  const fwdLog = join(dir, "forwarder.log");
  fwd = spawnWin(["forwarder", "--listen", fwdPipe, "--allow", "127.0.0.1/32"], fwdLog);
  await waitLog(fwdLog, /^listening on npipe:/, "the Windows forwarder to listen");
});

afterAll(async () => {
  await kill(run);
  await kill(fwd);
  await kill(engine);
  dest.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("edgeport.exe run following an engine on a named pipe", () => {
  test("run connects: /_ping, /version, /events, the list, and says it follows the engine", async () => {
    run = spawnWin(
      ["run", "--engine", engineUrl, "--relay", fwdPipe, "--firewall", "none", "--api", "none", "--resync", "1s"],
      runLog,
    );
    await waitLog(
      runLog,
      /^following engine npipe:\/\/\/\/\.\/pipe\/edgeport-test-engine-\d+ \(engine 24\.0\.7, API 1\.41\): 0 running/,
      "run to follow the engine",
    );
    expect((await stats()).eventsOpen).toBe(1);
  });

  test("a start event on the stream publishes the container's port; traffic goes through", async () => {
    expect((await ctl(`/start?id=c0ffee${"0".repeat(58)}&hostPort=${port}&port=${dest.port}`)).streams).toBe(1);
    await waitForListener(port, "127.0.0.1", 20_000);
    const got = await download(port, 1 << 20, 31);
    expect(got.sha).toBe(sha(prngStream(31), 1 << 20));
  });

  test("the events stream stays open across resyncs: the same stream, never reopened", async () => {
    const s0 = await stats();
    // --resync 1s: three more full lists (each a request of its own on the pipe) while the stream is open
    await until(async () => (await stats()).lists >= s0.lists + 3, "three resyncs", 20_000);
    const s1 = await stats();
    expect(s1.eventsOpened).toBe(1);
    expect(s1.eventsOpen).toBe(1);
    expect(hasLog(runLog, /unreachable|event stream ended/)).toBe(false);
    expect(canBind("127.0.0.1", port)).toBe(false);
  });

  test("a die event removes the listener", async () => {
    await ctl(`/die?id=c0ffee${"0".repeat(58)}`);
    await until(() => canBind("127.0.0.1", port), "the port to be free", 20_000);
    expect((await stats()).eventsOpened).toBe(1);
  });

  test("the engine restarted (Docker Desktop restarting): run says so, reconnects, and follows the new one", async () => {
    const following = /^following engine npipe:/;
    await kill(engine);
    await waitLog(runLog, /^engine npipe:\S+ unreachable: /, "run to see the engine gone");
    console.log(`run, on the engine's end: ${logLines(runLog).find((l) => / unreachable: /.test(l.msg))?.msg}`);
    await startEngine();
    await until(
      () => logLines(runLog).filter((l) => following.test(l.msg)).length === 2,
      "run to follow the new engine",
      20_000,
    );
    await ctl(`/start?id=beef${"0".repeat(60)}&hostPort=${port}&port=${dest.port}`);
    await waitForListener(port, "127.0.0.1", 20_000);
    expect((await download(port, 100_000, 32)).received).toBe(100_000);
  });

  test("Ctrl-C: run exits 0 and closes the events stream", async () => {
    expect(await ctrlC(run!)).toBe(0);
    await until(async () => (await stats()).eventsOpen === 0, "the engine to see the stream closed");
  });
});
