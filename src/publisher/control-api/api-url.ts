/** Where the control API listens: `unix:///path`, `npipe:////./pipe/NAME` or loopback `tcp://`. Pure. */
import { EdgeportError } from "../../shared/errors.ts";

export type ApiUrl =
  | { kind: "unix"; path: string }
  | { kind: "npipe"; path: string }
  | { kind: "tcp"; host: string; port: number };

/** `unix:///path`, a bare path, `npipe:////./pipe/name`, or `tcp://127.0.0.1:PORT` (loopback only). */
export function parseApiUrl(s: string): ApiUrl {
  if (s.startsWith("unix://")) return { kind: "unix", path: s.slice(7) };
  if (s.startsWith("/")) return { kind: "unix", path: s };
  if (s.startsWith("npipe://")) return { kind: "npipe", path: s.slice(8).replace(/\//g, "\\") };
  const m = /^tcp:\/\/(127\.0\.0\.1|\[::1\]|localhost):(\d{1,5})$/.exec(s);
  if (m && Number(m[2]) > 0 && Number(m[2]) < 65536)
    return { kind: "tcp", host: m[1] === "localhost" ? "127.0.0.1" : m[1]!.replace(/[[\]]/g, ""), port: Number(m[2]) };
  if (s.startsWith("tcp://"))
    throw new EdgeportError(
      "E_BAD_URL",
      `API URL "${s}": a TCP API listens on loopback only: tcp://127.0.0.1:PORT or tcp://[::1]:PORT`,
    );
  throw new EdgeportError(
    "E_BAD_URL",
    `API URL "${s}" is not one of unix:///path, npipe:////./pipe/NAME, tcp://127.0.0.1:PORT`,
  );
}

export const formatApiUrl = (u: ApiUrl): string =>
  u.kind === "unix"
    ? `unix://${u.path}`
    : u.kind === "npipe"
      ? `npipe://${u.path.replace(/\\/g, "/")}`
      : `tcp://${u.host.includes(":") ? `[${u.host}]` : u.host}:${u.port}`;
