/**
 * The user's docker CLI on the host through a socket forward of the engine's socket (issue 17,
 * item 3): `edgeport publish unix:///<tmp>/docker.sock:unix:///<test bed engine socket>` and the
 * same docker CLI the test bed uses, with DOCKER_HOST pointing at the forward. Every kind of
 * engine traffic: plain requests, streams (logs -f, events), hijacked exec with stdin half-closed,
 * tar archives both ways (cp), and a build context upload.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUSYBOX_IMAGE, startTestbed, type Testbed } from "../../scripts/testbed.ts";
import { EDGEPORT, ensureBinary, hasLog, spawnHost, stopProcess, until } from "../helpers/e2e.ts";
import { prngStream } from "./fixtures/prng.ts";

let tb: Testbed;
let fwd: Bun.Subprocess;
let pub: Bun.Subprocess;
let dir: string;
let env: Record<string, string>;

/** The docker CLI through the forward (never the test bed's socket directly). */
async function docker(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(["docker", ...args], {
    env,
    stdin: stdin === undefined ? "ignore" : "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  if (stdin !== undefined && p.stdin) {
    p.stdin.write(stdin);
    await p.stdin.end();
  }
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}
async function ok(args: string[], stdin?: string): Promise<string> {
  const r = await docker(args, stdin);
  if (r.code !== 0) throw new Error(`docker ${args.join(" ")}: exit ${r.code}: ${r.err}`);
  return r.out;
}
/** A long-running docker command whose output is read as it comes. */
function follow(args: string[]): { proc: Bun.Subprocess; text: () => string } {
  const proc = Bun.spawn(["docker", ...args], { env, stdout: "pipe", stderr: "pipe" });
  let text = "";
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) text += dec.decode(chunk);
  })();
  return { proc, text: () => text };
}
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  await ensureBinary();
  tb = await startTestbed();
  dir = mkdtempSync(join(tmpdir(), "ep-dk-"));
  const fwdSock = join(tb.dir, "edgeport", "fwd.sock");
  const fwdLog = join(tb.dir, "forwarder.log");
  fwd = tb.spawnInVm(
    [
      EDGEPORT,
      "forwarder",
      "--listen",
      `unix://${fwdSock}`,
      "--allow",
      `unix://${tb.dockerSock}`,
      "--log-format",
      "json",
    ],
    { logFile: fwdLog },
  );
  await until(() => hasLog(fwdLog, /^listening on/), "the forwarder");
  const log = join(tb.dir, "publish.log");
  const sock = join(dir, "docker.sock");
  pub = spawnHost(["publish", "--relay", `unix://${fwdSock}`, `unix://${sock}:unix://${tb.dockerSock}`], log, "info");
  await until(() => hasLog(log, /^published unix:/), "the engine's socket forward");
  expect(statSync(sock).mode & 0o777).toBe(0o700);
  env = { ...(process.env as Record<string, string>), DOCKER_HOST: `unix://${sock}` };
  delete env.DOCKER_CONTEXT;
}, 120_000);

afterAll(async () => {
  await docker(["rm", "-f", "ep-logs", "ep-exec", "ep-cp", "ep-ev", "ep-web"]);
  await stopProcess(pub);
  await stopProcess(fwd);
  await tb?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("the docker CLI through a socket forward of the engine socket", () => {
  test("ps, and run -d -p", async () => {
    expect(await ok(["ps", "--format", "{{.Names}}"])).toBeDefined();
    const id = (
      await ok(["run", "-d", "--name", "ep-web", "-p", "127.0.0.1:18080:80", BUSYBOX_IMAGE, "httpd", "-f", "-p", "80"])
    ).trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(await ok(["ps", "--format", "{{.Names}} {{.Ports}}"])).toContain("ep-web 127.0.0.1:18080->80/tcp");
  });

  test("logs -f sees lines as they come", async () => {
    await ok([
      "run",
      "-d",
      "--name",
      "ep-logs",
      BUSYBOX_IMAGE,
      "sh",
      "-c",
      "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ]);
    const f = follow(["logs", "-f", "ep-logs"]);
    try {
      await until(() => /tick \d+/.test(f.text()), "the first line", 10_000);
      const first = Math.max(...[...f.text().matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
      await until(() => f.text().includes(`tick ${first + 3}\n`), "lines written after logs -f started", 10_000);
    } finally {
      f.proc.kill();
    }
  }, 30_000);

  test("exec -i: a hijacked stream with stdin, half-closed (echo hi | docker exec -i C cat)", async () => {
    await ok(["run", "-d", "--name", "ep-exec", BUSYBOX_IMAGE, "sleep", "3600"]);
    expect(await ok(["exec", "-i", "ep-exec", "cat"], "hi\n")).toBe("hi\n");
    const big = "line of text\n".repeat(50_000);
    expect(sha(Buffer.from(await ok(["exec", "-i", "ep-exec", "cat"], big)))).toBe(sha(Buffer.from(big)));
  }, 30_000);

  test("cp of a 50 MiB file both ways, with checksums", async () => {
    await ok(["run", "-d", "--name", "ep-cp", BUSYBOX_IMAGE, "sleep", "3600"]);
    const data = prngStream(17)(50 << 20);
    const src = join(dir, "big.bin");
    writeFileSync(src, data);
    await ok(["cp", src, "ep-cp:/tmp/big.bin"]);
    expect((await ok(["exec", "ep-cp", "sha256sum", "/tmp/big.bin"])).split(" ")[0]).toBe(sha(data));
    const back = join(dir, "back.bin");
    await ok(["cp", "ep-cp:/tmp/big.bin", back]);
    expect(sha(readFileSync(back))).toBe(sha(data));
  }, 90_000);

  test("events sees a start event", async () => {
    const f = follow(["events", "--filter", "event=start", "--format", "{{.Actor.Attributes.name}}"]);
    try {
      // the stream may open after the first start: start again until one is seen
      await until(
        async () => {
          await docker(["rm", "-f", "ep-ev"]);
          await ok(["run", "-d", "--name", "ep-ev", BUSYBOX_IMAGE, "sleep", "3600"]);
          return until(() => f.text().includes("ep-ev\n"), "the start event", 3000).then(
            () => true,
            () => false,
          );
        },
        "a start event on the stream",
        20_000,
      );
    } finally {
      f.proc.kill();
    }
  }, 30_000);

  test("build with a small context, FROM the test bed's busybox image", async () => {
    const ctx = join(dir, "ctx");
    Bun.spawnSync(["mkdir", "-p", ctx]);
    writeFileSync(
      join(ctx, "Dockerfile"),
      `FROM ${BUSYBOX_IMAGE}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /built.txt\n`,
    );
    writeFileSync(join(ctx, "hello.txt"), "built through the forward\n");
    const r = await docker(["build", "-t", "ep-built:test", ctx]);
    expect(r.code).toBe(0);
    expect(await ok(["run", "--rm", "ep-built:test", "cat", "/built.txt"])).toBe("built through the forward\n");
  }, 60_000);
});
