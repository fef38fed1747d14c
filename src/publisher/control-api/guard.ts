/**
 * The TCP API's guard: a Host (and Origin, when sent) naming this loopback address (no DNS
 * rebinding), and the bearer token, compared in constant time. The unix socket and the named pipe
 * need none: their permissions are the guard.
 */
import { timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { errorBody } from "./replies.ts";

/** `Authorization: <scheme> <token>` with the scheme in any case (RFC 9110); null when malformed. */
export function bearerToken(header: string | undefined): string | null {
  const m = /^([A-Za-z]+) +(\S+) *$/.exec(header ?? "");
  return m && m[1]!.toLowerCase() === "bearer" ? m[2]! : null;
}

export function tokenGuard(token: string, apiHost?: string, port?: number): MiddlewareHandler {
  const expected = Buffer.from(token);
  const hosts = new Set([`${apiHost?.includes(":") ? `[${apiHost}]` : apiHost}:${port}`, `localhost:${port}`]);
  return async (c, next) => {
    const host = c.req.header("host") ?? "";
    if (!hosts.has(host))
      return c.json(errorBody("E_FORBIDDEN", `Host "${host.slice(0, 100)}" is not this API's address`), 403);
    const origin = c.req.header("origin");
    if (origin !== undefined && ![...hosts].some((h) => origin === `http://${h}`))
      return c.json(errorBody("E_FORBIDDEN", `Origin "${origin.slice(0, 100)}" may not use this API`), 403);
    const got = Buffer.from(bearerToken(c.req.header("authorization")) ?? "");
    if (got.length !== expected.length || !timingSafeEqual(got, expected))
      return c.json(
        errorBody("E_AUTH", "a bearer token is required (Authorization: Bearer <token from --api-token-file>)"),
        401,
      );
    await next();
  };
}
