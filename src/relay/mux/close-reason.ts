/** Why a session ended: a kind that callers branch on, and a detail for people. */

export type CloseKind =
  /** the peer closed the pipe cleanly (EOF) */
  | "peer-closed"
  /** the transport failed (reset, write error) */
  | "pipe-error"
  /** the peer broke the protocol */
  | "protocol"
  /** the pipe secrets did not match, or only one end has one */
  | "auth"
  /** the peer went silent (handshake bound or keepalive) */
  | "dead"
  /** this end closed it (stopping) */
  | "local"
  /** a bug here */
  | "internal";

export interface CloseReason {
  readonly kind: CloseKind;
  readonly detail: string;
}

export const closeReason = (kind: CloseKind, detail = ""): CloseReason => ({ kind, detail });

const PREFIX: Record<CloseKind, string> = {
  "peer-closed": "closed by the peer",
  "pipe-error": "pipe closed",
  protocol: "protocol error",
  auth: "authentication failed",
  dead: "pipe dead",
  local: "closed",
  internal: "internal error",
};

/** One line for logs, e.g. "authentication failed: the pipe secrets differ"; a local close is its detail alone. */
export function formatCloseReason(r: CloseReason): string {
  if (r.kind === "local" && r.detail) return r.detail;
  return r.detail ? `${PREFIX[r.kind]}: ${r.detail}` : PREFIX[r.kind];
}
