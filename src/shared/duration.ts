import { EdgeportError } from "./errors.ts";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "500ms", "5s", "2m", "1h", or a bare number of milliseconds. */
export function parseDuration(s: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(s);
  if (!m) throw new EdgeportError("E_BAD_ARG", `${what}: "${s}" is not a duration (write e.g. 500ms, 5s, 2m)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? "ms"]!);
}
