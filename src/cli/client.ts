/**
 * The CLI's side of the control API: one request to the running daemon, errors made readable.
 * Before a request goes to a unix socket, the socket and its directory must belong to this user or
 * root; every reply is checked against its schema (src/cli/replies.ts).
 */
import type { ArgsDef } from "citty";
import type { z } from "zod";
import { type ApiUrl, formatApiUrl, parseApiUrl } from "../publisher/control-api.ts";
import { checkDaemonSocket, defaultApiUrl } from "../shared/control-socket.ts";
import { EdgeportError, type ErrorCode } from "../shared/errors.ts";
import { pipeFetch } from "../shared/pipe-http.ts";
import type { ProcessContext } from "../shared/process-context.ts";
import { readSecretFile } from "../shared/secret-file.ts";
import { ErrorReply } from "./replies.ts";

export const apiArgs = {
  api: {
    type: "string",
    description: "The daemon's control API (default: EDGEPORT_API, else the per-user socket edgeport run uses)",
    valueHint: "URL",
  },
  "api-token-file": { type: "string", description: "Bearer token file for a tcp:// API", valueHint: "PATH" },
} as const satisfies ArgsDef;

export interface ApiClient {
  readonly url: string;
  /** One request; a 2xx reply of the schema's shape, else the EdgeportError the answer describes. */
  request<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    body?: unknown,
  ): Promise<{ status: number; body: z.infer<S> }>;
}

type Who = Pick<ProcessContext, "env" | "uid" | "platform">;

export function apiClient(a: { api?: string; "api-token-file"?: string }, who: Who): ApiClient {
  const url: ApiUrl = parseApiUrl(a.api ?? defaultApiUrl(who.env, who.uid, who.platform));
  const text = formatApiUrl(url);
  const tokenFile = a["api-token-file"] ?? who.env.EDGEPORT_API_TOKEN_FILE;
  const token = tokenFile ? readSecretFile("--api-token-file", tokenFile, who) : undefined;
  const base =
    url.kind === "tcp"
      ? `http://${url.host.includes(":") ? `[${url.host}]` : url.host}:${url.port}`
      : "http://localhost";
  return {
    url: text,
    async request(method, path, schema, body) {
      if (url.kind === "unix") checkDaemonSocket(url.path, who.uid);
      const init: RequestInit & { unix?: string } = {
        method,
        headers: {
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(url.kind !== "tcp" ? { unix: url.path } : {}),
      };
      let res: Response;
      try {
        // fetch cannot reach a named pipe; src/shared/pipe-http.ts can
        res =
          url.kind === "npipe"
            ? await pipeFetch(url.path, `${base}${path}`, init)
            : await fetch(`${base}${path}`, init);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if ((code === "EACCES" || code === "EPERM") && url.kind !== "tcp")
          throw new EdgeportError(
            "E_PERMISSION",
            `permission denied on ${url.path} (the daemon runs as another user?): run this as that user, or point --api / EDGEPORT_API at your own daemon`,
          );
        throw new EdgeportError(
          "E_DIAL",
          `no edgeport daemon answers at ${text} (${(e as { code?: string }).code ?? (e as Error).message}); start one with: edgeport run --relay URL [--engine URL]${a.api ? "" : " (or point --api / EDGEPORT_API at the one that runs)"}`,
        );
      }
      const data: unknown = await res.json().catch(() => undefined);
      const ok = res.status >= 200 && res.status < 300;
      const parsed = (ok ? schema : ErrorReply).safeParse(data);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new EdgeportError(
          "E_PROTOCOL",
          `${text} answered ${method} ${path} with ${res.status} and a reply that is not edgeport's API (${issue ? `${issue.path.join(".") || "body"}: ${issue.message}` : "not JSON"}); is an edgeport daemon of this version listening there?`,
        );
      }
      if (!ok) throw apiError(res.status, parsed.data as z.infer<typeof ErrorReply>);
      return { status: res.status, body: parsed.data as z.infer<typeof schema> };
    },
  };
}

/** An API error answer as the EdgeportError it describes (4xx are the caller's mistakes: exit 2). */
export function apiError(status: number, body: { code?: string; message?: string }): EdgeportError {
  const code = (body.code ?? "E_DIAL") as ErrorCode;
  const usage = status === 400 ? "E_BAD_SPEC" : code;
  return new EdgeportError(usage, body.message ?? `the daemon answered ${status}`);
}
