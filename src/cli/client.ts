/** The CLI's side of the control API: one request to the running daemon, errors made readable. */
import { readFileSync } from "node:fs";
import type { ArgsDef } from "citty";
import { type ApiUrl, formatApiUrl, parseApiUrl } from "../publisher/control-api.ts";
import { EdgeportError } from "../shared/errors.ts";
import { defaultApiUrl } from "./run.ts";

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
  request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

export function apiClient(a: { api?: string; "api-token-file"?: string }): ApiClient {
  const url: ApiUrl = parseApiUrl(a.api ?? defaultApiUrl(process.env, process.getuid?.() ?? 0, process.platform));
  const text = formatApiUrl(url);
  let token: string | undefined;
  const tokenFile = a["api-token-file"] ?? process.env.EDGEPORT_API_TOKEN_FILE;
  if (tokenFile) {
    try {
      token = readFileSync(tokenFile, "utf8").trim();
    } catch (e) {
      throw new EdgeportError(
        "E_BAD_ARG",
        `--api-token-file: cannot read ${tokenFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
  }
  return {
    url: text,
    async request<T>(method: string, path: string, body?: unknown) {
      const base =
        url.kind === "tcp"
          ? `http://${url.host.includes(":") ? `[${url.host}]` : url.host}:${url.port}`
          : "http://localhost";
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
        res = await fetch(`${base}${path}`, init);
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
      const data = (await res.json().catch(() => ({}))) as T;
      return { status: res.status, body: data };
    },
  };
}

/** An API error answer as the EdgeportError it describes (4xx are the caller's mistakes: exit 2). */
export function apiError(status: number, body: { code?: string; message?: string }): EdgeportError {
  const code = (body.code ?? "E_DIAL") as ConstructorParameters<typeof EdgeportError>[0];
  const usage = status === 400 ? "E_BAD_SPEC" : code;
  return new EdgeportError(usage as never, body.message ?? `the daemon answered ${status}`);
}
