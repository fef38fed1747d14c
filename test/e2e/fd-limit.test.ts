/**
 * The host at its file descriptor limit (issue 16, defect 4): `edgeport run` started under
 * `ulimit -n 256`, 400 clients of an echo port through the real forwarder. Before, Bun's listener
 * spun at a full core on EMFILE, logged nothing and left clients unanswered. Now: one warning naming
 * the limit, accepting paused (CPU near zero), every client answered or cleanly closed, a recovery
 * line once clients leave, the limit in `status`, and the descriptors back at their baseline.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { openSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { startTestbed, type Testbed } from "../../scripts/testbed.ts";
import type { DaemonState } from "../../src/publisher/daemon.ts";
import { EDGEPORT, ensureBinary, hasLog, logLines, stopProcess, until, waitForListener } from "../helpers/e2e.ts";
import { freePort } from "../helpers/tcp-client.ts";

const LIMIT = 256;
const CLIENTS = 400;
let tb: Testbed;
let fwd: Bun.Subprocess;
let host: Bun.Subprocess;
let api: string;
let runLog: string;
let port: number;

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
/** user + system CPU time of a process, in clock ticks (1/100 s) */
const cpuTicks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]);
};
const state = async () =>
  (await (await fetch("http://localhost/v1/state", { unix: api } as RequestInit)).json()) as DaemonState;

beforeAll(async () => {
  await ensureBinary();
  tb = await startTestbed();
  const srv = await tb.runTestServer("testsrv");
  const fwdSock = join(tb.dir, "edgeport", "fwd.sock");
  const fwdLog = join(tb.dir, "forwarder.log");
  fwd = tb.spawnInVm(
    [EDGEPORT, "forwarder", "--listen", `unix://${fwdSock}`, "--allow", "172.17.0.0/16", "--log-format", "json"],
    { logFile: fwdLog },
  );
  await until(() => hasLog(fwdLog, /^listening on/), "the forwarder to listen");
  api = join(tb.dir, "api", "control.sock");
  runLog = join(tb.dir, "run.log");
  port = freePort();
  const out = openSync(runLog, "a");
  const args = [
    "run",
    "--relay",
    `unix://${fwdSock}`,
    "--engine",
    "none",
    "--api",
    `unix://${api}`,
    "--log-format",
    "json",
    "--log-level",
    "info",
  ];
  // exec: the shell becomes edgeport, so the pid is the daemon's
  host = Bun.spawn(["sh", "-c", `ulimit -n ${LIMIT}; exec "$@"`, "sh", EDGEPORT, ...args], {
    stdout: out,
    stderr: out,
    stdin: "ignore",
  });
  await until(() => hasLog(runLog, /^edgeport .*, api unix:/), "the control API");
  const r = await fetch("http://localhost/v1/ports", {
    method: "POST",
    unix: api,
    body: JSON.stringify({ spec: `127.0.0.1:${port}:${srv.ip}:7001` }),
    headers: { "content-type": "application/json" },
  } as RequestInit);
  expect(r.status).toBe(201);
  await waitForListener(port);
}, 120_000);

afterAll(async () => {
  await stopProcess(host);
  await stopProcess(fwd);
  await tb?.stop();
}, 60_000);

interface Held {
  socket?: Socket<undefined>;
  answered: boolean;
  closed: boolean;
}

/** A client that connects, sends one line and holds the connection; it notes an answer or its end. */
function holdOne(): Held {
  const h: Held = { answered: false, closed: false };
  Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      open(s) {
        h.socket = s;
        s.write("ping\n");
      },
      data() {
        h.answered = true;
      },
      close() {
        h.closed = true;
      },
      error() {
        h.closed = true;
      },
    },
  }).catch(() => {
    h.closed = true;
  });
  return h;
}

test("at the fd limit: one warning naming it, accepting paused at low CPU, clients answered or closed, recovery", async () => {
  const pid = host.pid;
  const st = await state();
  expect(st.fds).toMatchObject({ limit: LIMIT, exhausted: false });
  const status = Bun.spawnSync([EDGEPORT, "status", "--api", `unix://${api}`]).stdout.toString();
  expect(status).toMatch(new RegExp(`fds: +\\d+ open of the limit ${LIMIT}`));
  const baseline = fdCount(pid);

  const clients = Array.from({ length: CLIENTS }, holdOne);
  await until(() => hasLog(runLog, /out of file descriptors/), "the warning", 20_000);
  const warning = logLines(runLog).find((l) => /out of file descriptors/.test(l.msg))!;
  expect(warning.level).toBe("warn");
  expect(warning.msg).toContain(`limit ${LIMIT}`);
  expect((await state()).fds?.exhausted).toBe(true);
  // every client is answered or cleanly closed (reset from the queue, or refused): none is left hanging
  await until(() => clients.every((c) => c.answered || c.closed), "every client answered or closed", 20_000);
  const answered = clients.filter((c) => c.answered && !c.closed).length;
  expect(answered).toBeGreaterThan(LIMIT / 2);

  // the process idles while it waits for descriptors (the old listener spun at a full core)
  const t0 = cpuTicks(pid);
  const w0 = performance.now();
  await Bun.sleep(2000); // the measurement window itself, not a wait for state
  const cpu = (cpuTicks(pid) - t0) / ((performance.now() - w0) / 10);
  console.log(
    `fd-limit: ${answered} of ${CLIENTS} answered while at the limit; CPU ${(cpu * 100).toFixed(1)}% of a core`,
  );
  expect(cpu).toBeLessThan(0.1);
  expect(logLines(runLog).filter((l) => /out of file descriptors/.test(l.msg))).toHaveLength(1);

  // the held clients leave: accepting resumes, and new clients are answered again
  for (const c of clients) c.socket?.end();
  await until(() => hasLog(runLog, /accepting resumed/), "the recovery line", 20_000);
  expect((await state()).fds?.exhausted).toBe(false);
  const again = Array.from({ length: 50 }, holdOne);
  await until(() => again.every((c) => c.answered), "new clients answered after the recovery", 20_000);
  for (const c of again) c.socket?.end();
  await until(() => fdCount(pid) <= baseline + 2, `fds back at the baseline ${baseline}`, 20_000);
  console.log(`fd-limit: fds ${baseline} before, ${fdCount(pid)} after`);
}, 120_000);
