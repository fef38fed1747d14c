/** Stable error codes: scripts and the control API match on these, never on messages. */
export type ErrorCode =
  | "E_BAD_SPEC"
  | "E_BAD_URL"
  | "E_BAD_ADDRESS"
  | "E_BAD_CIDR"
  | "E_BAD_ARG"
  | "E_PORT_IN_USE"
  | "E_ADDR_NOT_AVAILABLE"
  | "E_PERMISSION"
  | "E_FORBIDDEN_DEST"
  | "E_PROTOCOL"
  | "E_AUTH"
  | "E_PIPE_DOWN"
  | "E_DIAL"
  | "E_UNSUPPORTED"
  | "E_CONFLICT"
  | "E_NOT_FOUND"
  /** the process is at its file descriptor limit (EMFILE) */
  | "E_FD_LIMIT";

/** The one error class of edgeport: a stable code and a message a user can act on. */
export class EdgeportError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EdgeportError";
    this.code = code;
  }
}

export const isEdgeportError = (e: unknown, code?: ErrorCode): e is EdgeportError =>
  e instanceof EdgeportError && (code === undefined || e.code === code);

/** Best-effort errno code of a system error (EADDRINUSE, ECONNREFUSED...). */
export const errnoOf = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
};

/** Any thrown value as an EdgeportError (an unexpected one keeps its message and becomes the cause). */
export const asEdgeportError = (e: unknown, code: ErrorCode = "E_DIAL"): EdgeportError =>
  e instanceof EdgeportError ? e : new EdgeportError(code, (e as Error)?.message ?? String(e), { cause: e });
