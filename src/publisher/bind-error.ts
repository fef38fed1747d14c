/** A failed bind as an EdgeportError whose code and message say why (and what to do). */
import { EdgeportError, type ErrorCode, errnoOf } from "../shared/errors.ts";
import { atFdLimit, fdLimit, readFdLimit } from "../shared/fd-limit.ts";

const BIND_HINTS: Record<string, string> = {
  EADDRINUSE: "the address is already in use by another listener",
  EADDRNOTAVAIL: "the address is not assigned to any interface of this host",
  EACCES: "permission denied (ports below 1024 need privileges)",
  EPERM: "permission denied",
};

const CODES: Record<string, ErrorCode> = {
  EADDRINUSE: "E_PORT_IN_USE",
  EADDRNOTAVAIL: "E_ADDR_NOT_AVAILABLE",
  EACCES: "E_PERMISSION",
  EPERM: "E_PERMISSION",
  EMFILE: "E_FD_LIMIT",
  ENFILE: "E_FD_LIMIT",
};

/**
 * Bun's listen errors carry no code at the descriptor limit (the message is only "Failed to
 * listen"): then the open count says whether it was EMFILE.
 */
function errnoAtBind(e: unknown): string {
  const code = errnoOf(e);
  if (code) return code;
  return atFdLimit() ? "EMFILE" : "EIO";
}

export function bindError(address: string, e: unknown): EdgeportError {
  const code = errnoAtBind(e);
  const hint =
    code === "EMFILE" || code === "ENFILE"
      ? `too many open files: the process is at its limit of ${(fdLimit() ?? readFdLimit())?.soft ?? "?"} file descriptors (RLIMIT_NOFILE)`
      : (BIND_HINTS[code] ?? code);
  return new EdgeportError(CODES[code] ?? "E_DIAL", `cannot listen on ${address}: ${hint} (${code})`, { cause: e });
}
