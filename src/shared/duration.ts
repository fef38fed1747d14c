import { EdgeportError } from "./errors.ts";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "500ms", "5s", "2m", "1h", or 0 (off). A unit is required: "5" is an error, not 5 ms. */
export function parseDuration(s: string, what: string): number {
  if (/^\s*0+(\.0+)?\s*$/.test(s)) return 0;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(s);
  if (!m) {
    const bare = /^\s*\d+(\.\d+)?\s*$/.test(s);
    throw new EdgeportError(
      "E_BAD_ARG",
      `${what}: "${s}" ${bare ? "has no unit" : "is not a duration"} (write e.g. 500ms, 5s, 2m)`,
    );
  }
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}
