/**
 * exec: from Windows: `edgeport.exe publish --relay "exec:edgeport.exe forwarder --listen stdio:"`,
 * the pipe being the spawned Windows process's stdin and stdout (as with wsl.exe on Windows).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prngStream } from "../e2e/fixtures/prng.ts";
import { waitForListener } from "../helpers/e2e.ts";
import { canBind, connectClient, freePortRange } from "../helpers/tcp-client.ts";
import { ctrlC, download, EXE, kill, sha, spawnWin, startDestination, zPath } from "../helpers/wine.ts";

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), "edgeport-wine-exec-"));
const dest = startDestination();
let pub: Bun.Subprocess | null = null;

afterAll(async () => {
  await kill(pub);
  dest.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("exec: spawning the Windows edgeport as forwarder --listen stdio:, 16 MiB each way", async () => {
  const port = freePortRange(1);
  const relay = `exec:"${zPath(EXE)}" forwarder --listen stdio: --allow 127.0.0.1/32 --log-level debug`;
  pub = spawnWin(["publish", "--relay", relay, `127.0.0.1:${port}:127.0.0.1:${dest.port}`], join(dir, "pub.log"));
  await waitForListener(port, "127.0.0.1", 20_000);

  const down = await download(port, 16 * MiB, 31);
  expect(down.ending).toBeNull();
  expect(down.received).toBe(16 * MiB);
  expect(down.sha).toBe(sha(prngStream(31), 16 * MiB));

  const c = await connectClient(port);
  await c.write(new TextEncoder().encode("put\n"));
  await c.writeStream(prngStream(32), 16 * MiB);
  c.socket.shutdown();
  expect(await c.closed).toBeNull();
  expect(c.text().trim()).toBe(sha(prngStream(32), 16 * MiB));

  expect(await ctrlC(pub)).toBe(0);
  expect(canBind("127.0.0.1", port)).toBe(true);
});
