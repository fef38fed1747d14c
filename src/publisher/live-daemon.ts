/**
 * Is another edgeport daemon answering on this control socket? A second `edgeport run` must not
 * take a live daemon's socket over (the first would keep its ports but vanish from ls and status);
 * a socket nobody answers on is stale, and serveControlApi replaces it.
 */
import { existsSync } from "node:fs";
import { EdgeportError, errnoOf } from "../shared/errors.ts";
import { pipeFetch } from "../shared/pipe-http.ts";
import { type ApiUrl, formatApiUrl } from "./control-api.ts";

/** what a connect to a socket file nobody serves fails with */
const STALE = new Set(["ECONNREFUSED", "ENOENT", "ConnectionRefused", "FailedToOpenSocket"]);

export async function refuseLiveDaemon(url: ApiUrl, timeoutMs = 2000): Promise<void> {
  // TCP: Bun.serve's own EADDRINUSE names the port; a unix path that does not exist is free
  if (url.kind === "tcp" || (url.kind === "unix" && !existsSync(url.path))) return;
  const init = { signal: AbortSignal.timeout(timeoutMs), ...(url.kind === "unix" ? { unix: url.path } : {}) };
  let res: Response;
  try {
    res =
      url.kind === "npipe"
        ? await pipeFetch(url.path, "http://localhost/v1/health", init)
        : await fetch("http://localhost/v1/health", init);
  } catch (e) {
    const code = errnoOf(e) ?? (e as { code?: string }).code ?? "";
    if (STALE.has(code) || (url.kind === "npipe" && !(e as Error).name?.includes("Timeout"))) return;
    throw new EdgeportError(
      "E_PORT_IN_USE",
      `${formatApiUrl(url)} accepts connections but does not answer (${code || (e as Error).message}): another edgeport daemon may hang there; stop it, or give this one its own --api`,
    );
  }
  const body = (await res.json().catch(() => ({}))) as { pid?: unknown };
  const pid = typeof body.pid === "number" ? ` (pid ${body.pid})` : "";
  throw new EdgeportError(
    "E_PORT_IN_USE",
    `another edgeport daemon${pid} answers on ${formatApiUrl(url)}: stop it first (edgeport status shows it), or give this one its own --api`,
  );
}
