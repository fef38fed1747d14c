/**
 * The control API's error answers: one shape, `{code, message}` plus `issues` for a request body's
 * problems, each named by its field in words (not zod's text); and the HTTP status of every
 * error code. Pure.
 */
import type { z } from "zod";
import type { ErrorCode } from "../../shared/errors.ts";
import type { ApiError, Issue } from "../api-schemas.ts";

/** Codes only the API answers with (the rest are EdgeportError codes). */
export type ApiOnlyCode =
  | "E_FORBIDDEN"
  | "E_TOO_LARGE"
  | "E_METHOD_NOT_ALLOWED"
  | "E_UNSUPPORTED_MEDIA_TYPE"
  | "E_INTERNAL";

/** The HTTP status of each error code (docs/operations.md): 4xx the caller's mistake, 409 a port that cannot be bound. */
export const STATUS: Record<ErrorCode, 400 | 401 | 403 | 404 | 409 | 502 | 503> = {
  E_BAD_SPEC: 400,
  E_BAD_ARG: 400,
  E_BAD_ADDRESS: 400,
  E_BAD_URL: 400,
  E_BAD_CIDR: 400,
  E_UNSUPPORTED: 400,
  E_AUTH: 401,
  E_FORBIDDEN_DEST: 403,
  E_NOT_FOUND: 404,
  E_CONFLICT: 409,
  E_PORT_IN_USE: 409,
  E_ADDR_NOT_AVAILABLE: 409,
  E_PERMISSION: 409,
  E_PROTOCOL: 502,
  E_DIAL: 503,
  E_PIPE_DOWN: 503,
  E_FD_LIMIT: 503,
};

export const errorBody = (code: ErrorCode | ApiOnlyCode, message: string, issues?: Issue[]): ApiError => ({
  code,
  message,
  ...(issues ? { issues } : {}),
});

const WANTED: Record<string, string> = {
  string: "a string",
  boolean: "true or false",
  number: "a number",
  int: "an integer",
  object: "a JSON object",
  array: "an array",
};

/** What a JSON value is, in words. */
function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return "a string";
  if (typeof v === "number") return "a number";
  return String(v);
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const k of path) v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

const join = (path: readonly PropertyKey[]) => path.map(String).join(".");

/** One zod issue as the API's issues: the field's path and what is wrong with it, in words. */
export function issueWords(i: z.core.$ZodIssue, input: unknown): Issue[] {
  const path = join(i.path);
  switch (i.code) {
    case "unrecognized_keys":
      return i.keys.map((k) => ({ path: join([...i.path, k]), message: `unknown key "${k}"` }));
    case "invalid_type": {
      const want = WANTED[i.expected] ?? i.expected;
      const got = valueAt(input, i.path);
      return [
        { path, message: got === undefined ? `missing (expected ${want})` : `expected ${want}, got ${kindOf(got)}` },
      ];
    }
    case "too_small":
      return [
        {
          path,
          message:
            i.origin === "string" && Number(i.minimum) === 1
              ? "must not be empty"
              : `must be at least ${i.minimum}${i.origin === "string" ? " characters" : ""}`,
        },
      ];
    case "too_big":
      return [{ path, message: `must be at most ${i.maximum}${i.origin === "string" ? " characters" : ""}` }];
    default:
      return [{ path, message: i.message }];
  }
}

/** Every issue of a failed parse, and the one-line message that lists them. */
export function validationError(e: z.ZodError, input: unknown, hint: string): ApiError {
  const issues = e.issues.flatMap((i) => issueWords(i, input));
  const text = issues.map((x) =>
    x.message.startsWith("unknown key") ? x.message : `${x.path || "body"}: ${x.message}`,
  );
  return errorBody("E_BAD_ARG", `bad request: ${text.join("; ")}; ${hint}`, issues);
}
