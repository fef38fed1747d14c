/**
 * One line of `edgeport doctor`: what was checked, the verdict, what was found and, when it is not
 * a pass, what to do. Pure. `warn` and `skip` do not fail the run: warn is a pass with a note
 * (a clock a little off, a port left alone by a rule), skip a check that could not apply.
 */
import type { ErrorCode } from "../../shared/errors.ts";

export type Verdict = "pass" | "warn" | "fail" | "skip";

export interface CheckResult {
  /** stable id: engine, clock, daemon, pipe.reach, firewall, port:tcp:127.0.0.1:8080 ... */
  id: string;
  verdict: Verdict;
  /** what was found, one line */
  detail: string;
  /** what to do about it (every fail and warn has one) */
  fix?: string;
  /** the stable error code of a failure, when there is one */
  code?: ErrorCode;
  /** for a port line: the host port it is about */
  port?: number;
}

export const pass = (id: string, detail: string, extra: Partial<CheckResult> = {}): CheckResult => ({
  id,
  verdict: "pass",
  detail,
  ...extra,
});
export const fail = (id: string, detail: string, fix: string, extra: Partial<CheckResult> = {}): CheckResult => ({
  id,
  verdict: "fail",
  detail,
  fix,
  ...extra,
});
export const warn = (id: string, detail: string, fix: string, extra: Partial<CheckResult> = {}): CheckResult => ({
  id,
  verdict: "warn",
  detail,
  fix,
  ...extra,
});
export const skip = (id: string, detail: string, extra: Partial<CheckResult> = {}): CheckResult => ({
  id,
  verdict: "skip",
  detail,
  ...extra,
});

export const failed = (results: readonly CheckResult[]): CheckResult[] => results.filter((r) => r.verdict === "fail");

const MARK: Record<Verdict, string> = { pass: "ok  ", warn: "warn", fail: "FAIL", skip: "skip" };

/** The text form: one line a check, its fix indented under it. */
export function formatResults(results: readonly CheckResult[]): string {
  const width = Math.min(28, Math.max(...results.map((r) => r.id.length), 0));
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${MARK[r.verdict]}  ${r.id.padEnd(width)}  ${r.detail}`);
    if (r.fix) lines.push(`${" ".repeat(width + 8)}fix: ${r.fix}`);
  }
  const bad = failed(results);
  lines.push(
    bad.length === 0
      ? `all ${results.length} checks pass`
      : `${bad.length} of ${results.length} checks failed: ${bad.map((r) => r.id).join(", ")}`,
  );
  return lines.join("\n");
}
