/** Shared pieces of the end-to-end tests: the compiled binary, processes and their logs. */

import { existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { $ } from "bun";
import { connectClient } from "./tcp-client.ts";
import { until } from "./until.ts";

export { until };

export const ROOT = resolve(import.meta.dir, "../..");

/** A process's resident memory (VmRSS), in KiB. */
export const rssKiB = (pid: number): number =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
export const EDGEPORT = join(ROOT, "dist", "edgeport");

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** The tests run the real compiled binary: (re)build it when a source is newer. */
export async function ensureBinary(): Promise<string> {
  if (!existsSync(EDGEPORT) || newestSource(join(ROOT, "src")) > statSync(EDGEPORT).mtimeMs) {
    await $`bun scripts/build.ts`.cwd(ROOT).quiet();
  }
  return EDGEPORT;
}

/** Waits until a host port accepts connections (the listener is up). */
export async function waitForListener(port: number, host = "127.0.0.1", ms = 10_000): Promise<void> {
  await until(
    async () => {
      try {
        const s = await Bun.connect({ hostname: host, port, socket: { data() {} } });
        s.terminate();
        return true;
      } catch {
        return false;
      }
    },
    `a listener on ${host}:${port}`,
    ms,
  );
}

/** JSON log lines of a process started with --log-format json. */
export function logLines(file: string): { level: string; msg: string; tag?: string }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
}

export const hasLog = (file: string, re: RegExp) => logLines(file).some((l) => re.test(l.msg));

/**
 * Starts `edgeport ...` on the host, logs (json) to a file: at debug for the tests; the benchmark
 * passes the level a user runs with (a repeated flag takes the last value, so the level is not
 * for args to say).
 */
export function spawnHost(
  args: string[],
  logFile: string,
  level: "debug" | "info" | "warn" = "debug",
  binary = EDGEPORT,
): Bun.Subprocess {
  const fd = openSync(logFile, "a");
  return Bun.spawn([binary, ...args, "--log-format", "json", "--log-level", level], {
    stdout: fd,
    stderr: fd,
    stdin: "ignore",
  });
}

export async function stopProcess(
  p: Bun.Subprocess | null | undefined,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  p.kill(signal);
  await Promise.race([p.exited, Bun.sleep(5000)]);
  if (p.exitCode === null && p.signalCode === null) {
    p.kill("SIGKILL");
    await p.exited;
  }
}

export function writeToken(path: string, token: string): string {
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return path;
}

/** One echo round trip; true when the bytes came back. */
export async function echoOnce(port: number, payload = "ping"): Promise<boolean> {
  try {
    const c = await connectClient(port);
    await c.write(new TextEncoder().encode(payload));
    c.socket.shutdown();
    const how = await Promise.race([c.closed, Bun.sleep(3000).then(() => "timeout")]);
    if (how === "timeout") c.socket.terminate();
    return how === null && c.text() === payload;
  } catch {
    return false;
  }
}
