/** The engine's lines: does it answer (and where its URL came from), and the clock skew between host and engine. Pure. */

import type { EngineChoice } from "../engine-discovery.ts";
import { type CheckResult, fail, pass, skip, warn } from "./check.ts";

export interface ClockSample {
  /** host clock (ms since the epoch) before the request and after the answer */
  sentAt: number;
  receivedAt: number;
  /** the engine's clock, ms since the epoch */
  engineTime: number;
  /** how precise engineTime is: 1000 for the Date header, 0 for /info's SystemTime */
  resolutionMs: number;
  from: string;
}

export interface EngineFacts {
  choice: EngineChoice;
  /** set when the engine answered */
  version?: { apiVersion: string; engineVersion?: string };
  /** why it did not answer */
  error?: string;
  /** how a vm:/// engine is reached: "through the pipe unix:///..." */
  via?: string;
  clock?: ClockSample;
}

/** Skew beyond what the round trip and the clock's resolution can explain: engine minus host, in ms. */
export function clockSkew(c: ClockSample): { skewMs: number; uncertaintyMs: number } {
  const mid = (c.sentAt + c.receivedAt) / 2;
  return {
    skewMs: Math.round(c.engineTime - mid),
    uncertaintyMs: Math.ceil((c.receivedAt - c.sentAt) / 2) + c.resolutionMs,
  };
}

export const CLOCK_WARN_MS = 1000;
export const CLOCK_FAIL_MS = 60_000;

function clockCheck(c: ClockSample | undefined): CheckResult {
  if (!c) return skip("clock", "the engine did not say its time");
  const { skewMs, uncertaintyMs } = clockSkew(c);
  const beyond = Math.max(0, Math.abs(skewMs) - uncertaintyMs);
  const what = `engine clock ${skewMs >= 0 ? "+" : ""}${(skewMs / 1000).toFixed(3)} s from the host's (±${(uncertaintyMs / 1000).toFixed(3)} s, ${c.from})`;
  const fix =
    "the VM's clock drifts while the host sleeps: run a time sync in the VM (chronyd, systemd-timesyncd) or restart the VM; log lines and event times of both ends disagree meanwhile";
  if (beyond > CLOCK_FAIL_MS) return fail("clock", what, fix);
  if (beyond > CLOCK_WARN_MS) return warn("clock", what, fix);
  return pass("clock", what);
}

export function engineChecks(f: EngineFacts): CheckResult[] {
  const where = `${f.choice.url} (from ${f.choice.source})${f.via ? ` ${f.via}` : ""}`;
  if (f.choice.url === "none")
    return [
      skip("engine", `none (from ${f.choice.source}): only the API and docker-proxy publish`),
      skip("clock", "no engine"),
    ];
  if (!f.version)
    return [
      fail(
        "engine",
        `${where} does not answer: ${f.error ?? "no answer"}`,
        `start the engine in the VM, or name the one that runs: --engine URL, "engine" in the config, or DOCKER_HOST (docker context ls shows where the docker CLI goes)`,
        { code: "E_DIAL" },
      ),
      skip("clock", "the engine does not answer"),
    ];
  const v = f.version;
  return [
    pass("engine", `${where} answers: engine ${v.engineVersion ?? "?"}, API ${v.apiVersion}`),
    clockCheck(f.clock),
  ];
}
