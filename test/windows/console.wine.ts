/**
 * Ctrl-C under Wine: Wine turns SIGINT to a Windows process into a CTRL_C_EVENT (as a console's
 * Ctrl-C or GenerateConsoleCtrlEvent would), which Bun hands to process.on("SIGINT"). Every
 * long-running command exits 0 and frees what it held. (Closing the console window,
 * CTRL_CLOSE_EVENT, and Ctrl-Break cannot be sent under Wine 8: its server implements CTRL_C only.)
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitForListener } from "../helpers/e2e.ts";
import { canBind, freePortRange } from "../helpers/tcp-client.ts";
import { ctrlC, download, kill, spawnWin, startDestination, waitLog } from "../helpers/wine.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-wine-console-"));
const pipe = `npipe:////./pipe/edgeport-test-console-${process.pid}`;
const dest = startDestination();
const started: Bun.Subprocess[] = [];
const start = (args: string[], log: string) => {
  const p = spawnWin(args, join(dir, log));
  started.push(p);
  return p;
};

afterAll(async () => {
  for (const p of started) await kill(p);
  dest.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("Ctrl-C: publish, run and forwarder exit 0; their ports and the pipe are free at once", async () => {
  const port = freePortRange(1);
  const fwd = start(["forwarder", "--listen", pipe, "--allow", "127.0.0.1/32"], "fwd.log");
  await waitLog(join(dir, "fwd.log"), /^listening on npipe:/, "the forwarder to listen");
  const pub = start(["publish", "--relay", pipe, `127.0.0.1:${port}:127.0.0.1:${dest.port}`], "pub.log");
  await waitForListener(port);
  expect((await download(port, 100_000, 1)).received).toBe(100_000);

  const daemon = start(["run", "--relay", pipe, "--engine", "none", "--firewall", "none", "--api", "none"], "run2.log");
  await waitLog(join(dir, "run2.log"), /^pipe up: npipe:/, "the daemon's pipe up");

  expect(await ctrlC(pub)).toBe(0);
  expect(canBind("127.0.0.1", port)).toBe(true);
  expect(await ctrlC(daemon)).toBe(0);
  expect(await ctrlC(fwd)).toBe(0);
  // the pipe name is free: a new forwarder can listen on it
  const again = start(["forwarder", "--listen", pipe, "--allow", "127.0.0.1/32"], "fwd2.log");
  await waitLog(join(dir, "fwd2.log"), /^listening on npipe:/, "a new forwarder on the same pipe");
  expect(await ctrlC(again)).toBe(0);
});
