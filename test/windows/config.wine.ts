/**
 * Windows paths: a TOML config in "C:\Program Files\edgeport test\" (a drive letter, spaces,
 * backslashes in a literal string) naming the pipe secret's --token-file there, and a forwarder given
 * the same file by its Windows path on the command line.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prngStream } from "../e2e/fixtures/prng.ts";
import { waitForListener } from "../helpers/e2e.ts";
import { freePortRange } from "../helpers/tcp-client.ts";
import {
  ctrlC,
  download,
  kill,
  runWin,
  sha,
  spawnWin,
  startDestination,
  waitLog,
  writeCFile,
} from "../helpers/wine.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-wine-config-"));
const name = `edgeport-test-config-${process.pid}`;
const pipe = `npipe:////./pipe/${name}`;
const api = `npipe:////./pipe/${name}-api`;
const dest = startDestination();
const token = writeCFile("Program Files/edgeport test/pipe secret.txt", "a-pipe-secret-of-some-length\r\n");
const config = writeCFile(
  "Program Files/edgeport test/edgeport config.toml",
  [
    `relay = "${pipe}"`,
    'engine = "none"',
    `api = "${api}"`,
    'firewall = "none"',
    `token-file = '${token}'`,
    'log-format = "json"',
    'log-level = "debug"',
    "reserved = [22]",
  ].join("\r\n"),
);
let fwd: Bun.Subprocess | null = null;
let daemon: Bun.Subprocess | null = null;
const fwdLog = join(dir, "fwd.log");
const runLog = join(dir, "run.log");

beforeAll(async () => {
  fwd = spawnWin(["forwarder", "--listen", pipe, "--allow", "127.0.0.1/32", "--token-file", token], fwdLog);
  await waitLog(fwdLog, /^listening on npipe:/, "the forwarder to listen");
});

afterAll(async () => {
  await kill(daemon);
  await kill(fwd);
  dest.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("run --config 'C:\\Program Files\\...\\edgeport config.toml' with its token-file: the pipe authenticates", async () => {
  expect(token).toBe("C:\\Program Files\\edgeport test\\pipe secret.txt");
  daemon = spawnWin(["run", "--config", config], runLog, { json: false });
  await waitLog(runLog, /^pipe up: npipe:/, "the authenticated pipe up");
  // the forwarder writes its own "pipe up" line when it gets there, not necessarily before run does
  await waitLog(fwdLog, /pipe up: .*auth/, "the forwarder to log the authenticated pipe up");
  const port = freePortRange(1);
  const r = await runWin(["publish", "--api", api, `127.0.0.1:${port}:127.0.0.1:${dest.port}`]);
  expect(r.code).toBe(0);
  await waitForListener(port);
  expect((await download(port, 1 << 20, 4)).sha).toBe(sha(prngStream(4), 1 << 20));
  expect(await ctrlC(daemon)).toBe(0);
});

test("a different secret is refused, and the forwarder says so", async () => {
  const other = writeCFile("Program Files/edgeport test/other secret.txt", "another-secret-of-some-length");
  const log = join(dir, "wrong.log");
  const p = spawnWin(
    ["publish", "--relay", pipe, "--token-file", other, `127.0.0.1:${freePortRange(1)}:127.0.0.1:1`],
    log,
  );
  await waitLog(fwdLog, /pipe refused: authentication failed/, "the forwarder to refuse the secret");
  await kill(p);
});

test("a token file that does not exist is named, with its drive letter, and exits 2", async () => {
  const r = await runWin(["forwarder", "--listen", pipe, "--token-file", "D:\\no such dir\\secret.txt"]);
  expect(r.code).toBe(2);
  expect(r.err).toContain("--token-file: cannot read D:\\no such dir\\secret.txt: ENOENT");
});
