/**
 * What edgeport reads of its own process: environment, platform, uid, pid, executable, and the
 * signal that stops it. main.ts reads these once (it is the only file that touches `process`) and
 * hands the context to the command that runs; everything below takes what it needs as arguments.
 */
export interface ProcessContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly platform: string;
  readonly arch: string;
  /** the uid edgeport runs as; 0 where there are none (Windows) */
  readonly uid: number;
  readonly pid: number;
  /** the edgeport binary (firewall rules name it; on Windows and macOS rules are per program) */
  readonly execPath: string;
  /** aborts on SIGINT or SIGTERM: every long-running task ends with it */
  readonly signal: AbortSignal;
}

/** The context a command received from main.ts (citty's `data`); a missing one is a wiring bug. */
export function contextOf(data: unknown): ProcessContext {
  const c = data as ProcessContext | undefined;
  if (!c?.signal || !c.env) throw new Error("a command ran without the process context main.ts hands it");
  return c;
}
