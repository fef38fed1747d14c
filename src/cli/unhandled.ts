/**
 * A promise nobody awaited that rejected, or an exception nobody caught, in the running binary:
 * one error line that says what it was and where, instead of Bun's raw dump of minified source.
 * The process goes on (as Bun's default does): a relay keeps serving its other connections.
 */
import type { ConsolaInstance } from "consola";
import { errnoOf } from "../shared/errors.ts";

interface ProcessEvents {
  on(event: "unhandledRejection" | "uncaughtException", listener: (reason: unknown) => void): unknown;
}

/** One line: the kind, the error's name, code and message, and the innermost stack frame. */
export function describeUnhandled(kind: string, reason: unknown): string {
  if (!(reason instanceof Error)) return `internal error (${kind}): ${String(reason).slice(0, 500)}`;
  const code = errnoOf(reason);
  const frame = reason.stack
    ?.split("\n")
    .map((l) => l.trim())
    .find((l) => l.startsWith("at "));
  return `internal error (${kind}): ${reason.name}${code ? ` [${code}]` : ""}: ${reason.message}${frame ? ` (${frame})` : ""}`;
}

export function logUnhandled(proc: ProcessEvents, log: ConsolaInstance): void {
  proc.on("unhandledRejection", (reason) => log.error(describeUnhandled("unhandled rejection", reason)));
  proc.on("uncaughtException", (reason) => log.error(describeUnhandled("uncaught exception", reason)));
}
