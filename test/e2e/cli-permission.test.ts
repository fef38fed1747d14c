/**
 * The CLI as an unprivileged user against a daemon's control socket it may not open (issue 16,
 * defect 10): the error says permission denied on that socket, not that no daemon answers.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EDGEPORT, ensureBinary } from "../helpers/e2e.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-perm-"));
const sock = join(dir, "control.sock");
let server: ReturnType<typeof Bun.serve> | null = null;

beforeAll(async () => {
  await ensureBinary();
  chmodSync(dir, 0o755); // the directory may be entered: the socket itself is the barrier
  server = Bun.serve({ unix: sock, fetch: () => Response.json({ ok: true }) });
  chmodSync(sock, 0o600);
});
afterAll(() => {
  server?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

test("edgeport status as nobody against root's 0600 socket: 'permission denied on SOCKET', exit 1", async () => {
  const r = Bun.spawnSync(["runuser", "-u", "nobody", "--", EDGEPORT, "status", "--api", `unix://${sock}`], {
    stdin: "ignore",
  });
  const err = r.stderr.toString();
  expect(err).toContain(`permission denied on ${sock} (the daemon runs as another user?)`);
  // the code goes with --log-format json (a plain error is one `edgeport: <message>` line)
  const json = Bun.spawnSync(
    ["runuser", "-u", "nobody", "--", EDGEPORT, "status", "--api", `unix://${sock}`, "--log-format", "json"],
    { stdin: "ignore" },
  );
  expect(JSON.parse(json.stderr.toString().trim().split("\n").at(-1)!)).toMatchObject({ code: "E_PERMISSION" });
  expect(err).not.toContain("no edgeport daemon answers");
  expect(r.exitCode).toBe(1);
  // root (the socket's owner) is let in: the socket works (async: this process serves it)
  const ok = Bun.spawn([EDGEPORT, "status", "--api", `unix://${sock}`], { stdin: "ignore", stderr: "pipe" });
  expect(await new Response(ok.stderr).text()).not.toContain("permission denied");
  await ok.exited;
});
