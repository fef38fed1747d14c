/**
 * A small Docker Engine API client on Bun's fetch. Every response is validated with zod.
 * Unix sockets never meet an HTTP proxy; for tcp:// the proxy is bypassed explicitly.
 */
import { z } from "zod";
import { EdgeportError } from "../shared/errors.ts";

export const EngineNetwork = z.object({
  Name: z.string(),
  Id: z.string(),
  IPAM: z
    .object({ Config: z.array(z.object({ Subnet: z.string().optional() })).nullish() })
    .nullish(),
});
export type EngineNetwork = z.infer<typeof EngineNetwork>;

export interface Engine {
  readonly url: string;
  ping(): Promise<void>;
  networks(): Promise<EngineNetwork[]>;
  /** every subnet of every network (IPv4 and IPv6) */
  subnets(): Promise<string[]>;
}

export function parseEngineUrl(url: string): { base: string; unix?: string } {
  if (url.startsWith("unix://")) {
    const path = url.slice("unix://".length);
    if (!path.startsWith("/")) throw new EdgeportError("E_BAD_URL", `engine URL ${url}: write unix:///absolute/path`);
    return { base: "http://localhost", unix: path };
  }
  const m = /^tcp:\/\/([^/]+)$/.exec(url);
  if (m) return { base: `http://${m[1]}` };
  throw new EdgeportError("E_BAD_URL", `engine URL "${url}" is not one of unix:///path/docker.sock, tcp://HOST:PORT`);
}

export function createEngine(url: string, timeoutMs = 5000): Engine {
  const { base, unix } = parseEngineUrl(url);
  async function get<T>(path: string, schema: z.ZodType<T>): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        ...(unix ? { unix } : { proxy: "" }),
        signal: AbortSignal.timeout(timeoutMs),
      } as RequestInit);
    } catch (e) {
      throw new EdgeportError("E_DIAL", `engine ${url} unreachable: ${(e as Error).message}`, { cause: e });
    }
    if (!res.ok) throw new EdgeportError("E_DIAL", `engine ${url}: GET ${path} answered ${res.status}`);
    const parsed = schema.safeParse(path === "/_ping" ? await res.text() : await res.json());
    if (!parsed.success) throw new EdgeportError("E_PROTOCOL", `engine ${url}: unexpected answer to GET ${path}: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  }
  return {
    url,
    async ping() {
      await get("/_ping", z.string());
    },
    networks: () => get("/networks", z.array(EngineNetwork)),
    async subnets() {
      const nets = await get("/networks", z.array(EngineNetwork));
      return nets.flatMap((n) => (n.IPAM?.Config ?? []).flatMap((c) => (c.Subnet ? [c.Subnet] : [])));
    },
  };
}
