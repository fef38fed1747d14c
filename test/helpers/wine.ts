/**
 * The Windows tier's pieces: the Windows build run under Wine (scripts/test-windows.sh makes the
 * throwaway prefix and sets WINEPREFIX, TMPDIR, WINEDEBUG, WINEDLLOVERRIDES and
 * EDGEPORT_WINDOWS_EXE), Windows paths inside that prefix, and Linux-side destinations on
 * 127.0.0.1 (Wine processes share Linux's network stack).
 */
import { createHash } from "node:crypto";
import { mkdirSync, openSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { prngStream } from "../e2e/fixtures/prng.ts";
import { logLines, until } from "./e2e.ts";
import { connectClient } from "./tcp-client.ts";

export const WINE = "/usr/lib/wine/wine64";
const exe = process.env.EDGEPORT_WINDOWS_EXE;
const prefix = process.env.WINEPREFIX;
if (!exe || !prefix)
  throw new Error("the Windows tests run through scripts/test-windows.sh (it makes the Wine prefix and the .exe)");
export const EXE: string = exe;
export const PREFIX: string = prefix;

/** A Linux path as Wine's Z: drive names it. */
export const zPath = (linux: string): string => `Z:${linux.replace(/\//g, "\\")}`;

/** A file on the prefix's C: drive: its Linux path, and its Windows path (C:\...). */
export function cDrive(rel: string): { linux: string; win: string } {
  return { linux: join(PREFIX, "drive_c", rel), win: `C:\\${rel.replace(/\//g, "\\")}` };
}

export function writeCFile(rel: string, text: string): string {
  const f = cDrive(rel);
  mkdirSync(dirname(f.linux), { recursive: true });
  writeFileSync(f.linux, text);
  return f.win;
}

/** Starts `edgeport.exe ...` under Wine, logging json at debug to a file. */
export function spawnWin(args: string[], logFile: string, o: { json?: boolean } = {}): Bun.Subprocess {
  const fd = openSync(logFile, "a");
  const log = o.json === false ? [] : ["--log-format", "json", "--log-level", "debug"];
  return Bun.spawn([WINE, EXE, ...args, ...log], { stdout: fd, stderr: fd, stdin: "ignore" });
}

/** Runs `edgeport.exe ...` to its end: exit code and output. */
export async function runWin(args: string[], ms = 30_000): Promise<{ code: number | null; out: string; err: string }> {
  const p = Bun.spawn([WINE, EXE, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => p.kill("SIGKILL"), ms);
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  await p.exited;
  clearTimeout(timer);
  return { code: p.exitCode, out, err };
}

/** Ctrl-C as Wine delivers it: SIGINT to the process becomes a CTRL_C_EVENT. Waits for the exit. */
export async function ctrlC(p: Bun.Subprocess, ms = 10_000): Promise<number | null> {
  p.kill("SIGINT");
  await Promise.race([p.exited, Bun.sleep(ms)]);
  if (p.exitCode === null && p.signalCode === null) {
    p.kill("SIGKILL");
    await p.exited;
    return null;
  }
  return p.exitCode;
}

/** Ends a process the test started, if it still runs. */
export async function kill(p: Bun.Subprocess | null | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  p.kill("SIGKILL");
  await p.exited;
}

export const waitLog = (file: string, re: RegExp, what: string, ms = 20_000) =>
  until(() => logLines(file).some((l) => re.test(l.msg)), what, ms);

export const sha = (gen: (n: number) => Uint8Array, total: number): string => {
  const h = createHash("sha256");
  for (let done = 0; done < total; done += 1 << 20) h.update(gen(Math.min(1 << 20, total - done)));
  return h.digest("hex");
};

/**
 * A Linux destination on 127.0.0.1. Each connection first sends a command line: "get N SEED" streams
 * N deterministic bytes and closes; "put" hashes what follows until the client's FIN, then answers
 * the sha256 in hex and closes (so the answer proves the half-close went through).
 */
export function startDestination(): { port: number; stop(): void; connections: () => number } {
  let connections = 0;
  type St = {
    head: string;
    hash: ReturnType<typeof createHash> | null;
    gen?: (n: number) => Uint8Array;
    left: number;
    pending: Uint8Array | null;
  };
  const pump = (s: Bun.Socket<St>) => {
    const st = s.data;
    for (;;) {
      if (!st.pending) {
        if (st.left === 0 || !st.gen) break;
        st.pending = st.gen(Math.min(256 * 1024, st.left));
        st.left -= st.pending.length;
      }
      const n = Math.max(s.write(st.pending), 0);
      if (n < st.pending.length) {
        st.pending = st.pending.subarray(n);
        return;
      }
      st.pending = null;
    }
    if (st.gen && st.left === 0) s.end();
  };
  const server = Bun.listen<St>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(s) {
        connections++;
        s.data = { head: "", hash: null, left: 0, pending: null };
      },
      data(s, d) {
        const st = s.data;
        if (st.hash) return void st.hash.update(d);
        const before = st.head.length;
        st.head += Buffer.from(d).toString("latin1");
        const nl = st.head.indexOf("\n");
        if (nl < 0) return;
        const [cmd, n, seed] = st.head.slice(0, nl).split(" ");
        if (cmd === "get") {
          st.gen = prngStream(Number(seed));
          st.left = Number(n);
          pump(s);
        } else {
          st.hash = createHash("sha256");
          st.hash.update(d.subarray(nl - before + 1));
        }
      },
      drain(s) {
        pump(s);
      },
      end(s) {
        if (s.data.hash) s.end(`${s.data.hash.digest("hex")}\n`);
      },
    },
  });
  return { port: server.port, stop: () => server.stop(true), connections: () => connections };
}

/** Downloads n bytes of seed's stream from a destination through port; how many arrived, their sha256. */
export async function download(
  port: number,
  n: number,
  seed: number,
): Promise<{ received: number; sha: string; ending: string | null }> {
  const c = await connectClient(port, "127.0.0.1", { keepText: false });
  await c.write(new TextEncoder().encode(`get ${n} ${seed}\n`));
  c.socket.shutdown(); // our half-close: the destination keeps sending
  const ending = await c.closed;
  return { received: c.received, sha: c.sha256(), ending };
}
