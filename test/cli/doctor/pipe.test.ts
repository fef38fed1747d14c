/** The pipe lines: the pure verdicts, and the trial session against a real VM-side session on a unix socket. */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pipeChecks } from "../../../src/cli/doctor/pipe.ts";
import { probePipe } from "../../../src/cli/doctor/pipe-probe.ts";
import { Session } from "../../../src/relay/mux/session.ts";
import { listenPipes, type PipeListener } from "../../../src/relay/transports/index.ts";
import { until } from "../../helpers/until.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const SECRET = enc("a-secret-of-sixteen-chars");
let dir = "";
let listener: PipeListener | { close(): void } | null = null;
afterEach(() => {
  listener?.close();
  listener = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = "";
});

/** a VM end (as the forwarder runs it) on a fresh unix socket */
function vmEnd(secret?: Uint8Array, plain = false): string {
  dir = mkdtempSync("/tmp/edgeport-doctor-pipe-");
  const path = join(dir, "fwd.sock");
  listener = listenPipes({ kind: "unix", path }, (pipe) => {
    const s = new Session({ role: "vm", pipe: { secret, plain }, version: "9.9.9" });
    s.start(pipe);
    return s.handlers;
  });
  return path;
}
const verdicts = (r: ReturnType<typeof pipeChecks>) => Object.fromEntries(r.map((x) => [x.id, x.verdict]));

describe("trial session", () => {
  test("same secret: every line passes; the peer's version and extensions are shown", async () => {
    const p = await probePipe(
      { kind: "unix", path: vmEnd(SECRET) },
      { secret: SECRET, timeoutMs: 2000, version: "9.9.9" },
    );
    expect(p).toMatchObject({ reached: true, handshake: true, ready: true, secret: true });
    const lines = pipeChecks(p, "9.9.9");
    expect(verdicts(lines)).toEqual({
      "pipe.reach": "pass",
      "pipe.handshake": "pass",
      "pipe.peer": "pass",
      "pipe.secret": "pass",
    });
    expect(lines[2]!.detail).toMatch(/^edgeport 9\.9\.9, window \d+ B, extensions .*auth/);
  });

  test("a different secret: the secret line fails with E_AUTH", async () => {
    const p = await probePipe(
      { kind: "unix", path: vmEnd(SECRET) },
      { secret: enc("another-secret-of-16+"), timeoutMs: 2000, version: "9.9.9" },
    );
    const lines = pipeChecks(p, "9.9.9");
    expect(verdicts(lines)).toMatchObject({ "pipe.reach": "pass", "pipe.handshake": "pass", "pipe.secret": "fail" });
    // which end notices first is a race: this one, or the peer that hangs up on our proof
    expect(lines[3]).toMatchObject({
      code: "E_AUTH",
      detail: expect.stringMatching(/^authentication failed: .*secrets differ/),
    });
  });

  test("no secret here, one there: the secret line says the peer requires one", async () => {
    const p = await probePipe({ kind: "unix", path: vmEnd(SECRET) }, { timeoutMs: 2000, version: "9.9.9" });
    expect(pipeChecks(p, "9.9.9")[3]!.detail).toContain("the peer requires a pipe secret");
  });

  test("a plain vpnkit peer and another version", async () => {
    const p = await probePipe({ kind: "unix", path: vmEnd(undefined, true) }, { timeoutMs: 2000, version: "1.0.0" });
    expect(pipeChecks(p, "1.0.0")[2]).toMatchObject({
      verdict: "pass",
      detail: expect.stringContaining("plain vpnkit peer"),
    });
    const q = await probePipe({ kind: "unix", path: join(dir, "fwd.sock") }, { timeoutMs: 2000, version: "1.0.0" });
    expect(q.ready).toBe(true);
    expect(pipeChecks({ ...q, peer: { edgeport: true, version: "0.9.0", ext: [] } }, "1.0.0")[2]!.verdict).toBe("warn");
  });

  test("nothing listens: not reached, E_DIAL, the rest skipped", async () => {
    dir = mkdtempSync("/tmp/edgeport-doctor-pipe-");
    const p = await probePipe({ kind: "unix", path: join(dir, "none.sock") }, { timeoutMs: 2000, version: "1" });
    expect(verdicts(pipeChecks(p, "1"))).toEqual({
      "pipe.reach": "fail",
      "pipe.handshake": "skip",
      "pipe.peer": "skip",
      "pipe.secret": "skip",
    });
    expect(p.error).toContain("ENOENT");
  });

  test("something that is not vpnkit: the handshake fails; one that says nothing: bounded by the timeout", async () => {
    dir = mkdtempSync("/tmp/edgeport-doctor-pipe-");
    const path = join(dir, "http.sock");
    const server = Bun.listen({
      unix: path,
      socket: { open: (s) => void s.write("HTTP/1.1 400 Bad Request\r\n\r\n"), data() {} },
    });
    listener = { close: () => server.stop(true) };
    const p = await probePipe({ kind: "unix", path }, { timeoutMs: 2000, version: "1" });
    expect(pipeChecks(p, "1")[1]).toMatchObject({ verdict: "fail", code: "E_PROTOCOL" });
    expect(p.error).toContain("not a vpnkit multiplexer");
    server.stop(true);
    const silent = Bun.listen({ unix: `${path}2`, socket: { data() {} } });
    listener = { close: () => silent.stop(true) };
    const t0 = performance.now();
    const q = await probePipe({ kind: "unix", path: `${path}2` }, { timeoutMs: 300, version: "1" });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(q).toMatchObject({ reached: true, handshake: false });
  });

  test("fds return to their baseline after 50 trial sessions: refused, not vpnkit, wrong secret", async () => {
    const fds = () => readdirSync("/proc/self/fd").length;
    const path = vmEnd(SECRET);
    const junk = join(dir, "junk.sock");
    const server = Bun.listen({ unix: junk, socket: { open: (s) => void s.write("\x00garbage"), data() {} } });
    const before = fds();
    try {
      for (let i = 0; i < 50; i++) {
        await probePipe(
          { kind: "unix", path },
          { secret: enc("wrong-secret-of-16-chars"), timeoutMs: 1000, version: "1" },
        );
        await probePipe({ kind: "unix", path: junk }, { timeoutMs: 1000, version: "1" });
        await probePipe({ kind: "unix", path: `${path}.none` }, { timeoutMs: 1000, version: "1" });
      }
      await until(() => fds() <= before, `fds back to ${before} (now ${fds()})`, 5000);
    } finally {
      server.stop(true);
    }
  });
});
