/**
 * A small typed Docker Engine API client: unix sockets and tcp:// on Bun's fetch, Windows named
 * pipes on src/shared/pipe-http-client.ts (fetch cannot open a named pipe, oven-sh/bun#15350),
 * and vm:///path (a unix socket inside the VM) on the same client over channels of the pipe, which
 * the caller passes in (events does not import the relay).
 * Every response is validated with zod. The client never goes through an HTTP proxy, whatever
 * HTTP_PROXY/HTTPS_PROXY say (a proxy would see, or break, the engine's API).
 */
import { z } from "zod";
import { EdgeportError } from "../shared/errors.ts";
import { pipeRequest } from "../shared/pipe-http-client.ts";
import { ContainerInspect, ContainerList, EngineEvent, EngineNetwork, Version } from "./schemas.ts";

export { EngineNetwork };

/** The API version edgeport is written against; older engines are asked in their own version. */
export const API_VERSION = "1.41";
const MIN_API = "1.24";

export interface Engine {
  readonly url: string;
  /** how the engine is reached when that is not the URL alone: "through the pipe unix:///..." */
  readonly via?: string;
  /** /_ping then /version; fixes the API version used by every later call */
  negotiate(): Promise<{ apiVersion: string; engineVersion?: string }>;
  ping(): Promise<void>;
  networks(): Promise<EngineNetwork[]>;
  /** every subnet of every network (IPv4 and IPv6) */
  subnets(): Promise<string[]>;
  runningContainers(): Promise<string[]>;
  /** null when the container is gone */
  inspect(id: string): Promise<ContainerInspect | null>;
  /** streams events from `since` (engine seconds.nanoseconds) until the signal aborts or the engine goes away */
  events(o: {
    since?: string;
    signal: AbortSignal;
    onEvent: (e: EngineEvent) => void;
    onOpen?: () => void;
  }): Promise<void>;
}

const FORMS = "unix:///path/docker.sock, tcp://HOST:PORT, npipe:////./pipe/docker_engine, vm:///path/docker.sock";

/** unix: a socket path here (or a named pipe); vm: a socket path inside the VM, reached through the pipe */
export function parseEngineUrl(url: string): { base: string; unix?: string; vm?: string } {
  if (url.startsWith("vm://")) {
    const path = url.slice("vm://".length);
    if (!path.startsWith("/"))
      throw new EdgeportError(
        "E_BAD_URL",
        `engine URL "${url}": the path inside the VM must be absolute, e.g. vm:///var/run/docker.sock`,
      );
    if (!/[^/]/.test(path))
      throw new EdgeportError(
        "E_BAD_URL",
        `engine URL "${url}" names no socket inside the VM; e.g. vm:///var/run/docker.sock`,
      );
    return { base: "http://localhost", vm: path };
  }
  if (url.startsWith("unix://")) {
    const path = url.slice("unix://".length);
    if (!path.startsWith("/"))
      throw new EdgeportError("E_BAD_URL", `engine URL "${url}": the path must be absolute; accepted forms: ${FORMS}`);
    return { base: "http://localhost", unix: path };
  }
  const np = /^npipe:\/\/\/\/\.\/pipe\/([^/\\]+)$/.exec(url);
  if (np) return { base: "http://localhost", unix: `\\\\.\\pipe\\${np[1]}` };
  const m = /^tcp:\/\/([^/\s]+:\d{1,5})\/?$/.exec(url);
  if (m) return { base: `http://${m[1]}` };
  throw new EdgeportError("E_BAD_URL", `engine URL "${url}" is not one of ${FORMS}`);
}

/**
 * Bun's fetch takes HTTP_PROXY/HTTPS_PROXY from the environment at every request and has no
 * per-request opt-out, but honours NO_PROXY the same way: list the engine's host there.
 */
function bypassProxy(hostPort: string): void {
  const host = hostPort.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  for (const name of ["NO_PROXY", "no_proxy"]) {
    const list = (process.env[name] ?? "")
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean);
    if (!list.includes(host)) process.env[name] = [...list, host].join(",");
  }
}

/** Sends one request to the engine; the answer's body may be read as a stream (/events). */
export type EngineRequest = (url: string, init: { signal: AbortSignal }) => Promise<Response>;

/** HTTP over Bun.connect to a named pipe or a unix socket path. */
export const pipeHttp =
  (path: string): EngineRequest =>
  (url, init) =>
    pipeRequest(path, url, init);

/** How an engine URL is reached: a named pipe by pipeHttp, unix sockets and tcp by fetch. */
export function engineRequest(url: string): EngineRequest {
  const { unix, vm } = parseEngineUrl(url);
  if (vm)
    throw new EdgeportError("E_BAD_ARG", `engine ${url} is inside the VM: it is reached through the pipe (--relay)`);
  if (unix && url.startsWith("npipe:")) return pipeHttp(unix);
  // unix sockets never meet a proxy; for tcp, bypassProxy() lists the host in NO_PROXY
  return (u, init) => fetch(u, { ...(unix ? { unix } : {}), signal: init.signal } as RequestInit);
}

const versionNumber = (v: string) =>
  v
    .split(".")
    .map(Number)
    .reduce((a, b) => a * 1000 + b, 0);

/** Why a fetch failed, in our words: Bun's own ("Was there a typo in the url or port?") guesses wrong here. */
const WHY: Record<string, string> = {
  ENOENT: "no socket there (ENOENT)",
  ECONNREFUSED: "nothing listens there (ECONNREFUSED)",
  EACCES: "permission denied (EACCES)",
};
const fetchCause = (e: unknown): string => {
  if (e instanceof EdgeportError) return e.message; // already ours (the pipe to the VM is down...)
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string") return WHY[code] ?? code;
  return (e as Error)?.name === "TimeoutError" ? "no answer in time" : ((e as Error)?.message ?? String(e));
};

/** parseEngineUrl, whose error also says where the URL came from. */
export function parseNamedUrl(url: string, origin?: string): ReturnType<typeof parseEngineUrl> {
  try {
    return parseEngineUrl(url);
  } catch (e) {
    throw origin && e instanceof EdgeportError ? new EdgeportError(e.code, `${e.message} (from ${origin})`) : e;
  }
}

/**
 * `origin` says where the URL came from ("DOCKER_HOST"...); every error about the engine names it.
 * send: how requests travel, chosen once from the URL (a test may pass pipeHttp for a unix socket;
 * a vm:/// engine needs one: requests over channels of the pipe). via: how it is reached, for status
 * ("through the pipe unix:///...").
 */
export function createEngine(
  url: string,
  timeoutMs = 5000,
  origin?: string,
  sendWith?: EngineRequest,
  via?: string,
): Engine {
  const { base, unix, vm } = parseNamedUrl(url, origin);
  const send = sendWith ?? engineRequest(url);
  const named = origin ? `${url} (from ${origin})` : url;
  if (!unix && !vm) bypassProxy(base.slice("http://".length));
  let prefix = `/v${API_VERSION}`;

  async function request(path: string, init: { signal?: AbortSignal; versioned?: boolean } = {}): Promise<Response> {
    const full = `${base}${init.versioned === false ? "" : prefix}${path}`;
    try {
      return await send(full, { signal: init.signal ?? AbortSignal.timeout(timeoutMs) });
    } catch (e) {
      throw new EdgeportError("E_DIAL", `engine ${named} unreachable: ${fetchCause(e)}`, { cause: e });
    }
  }

  async function get<T>(path: string, schema: z.ZodType<T>, versioned = true): Promise<T> {
    const res = await request(path, { versioned });
    if (!res.ok) {
      const body = (await res.text()).slice(0, 200);
      throw new EdgeportError("E_DIAL", `engine ${named}: GET ${path} answered ${res.status} ${body.trim()}`);
    }
    const parsed = schema.safeParse(await res.json());
    if (!parsed.success)
      throw new EdgeportError(
        "E_PROTOCOL",
        `engine ${named}: unexpected answer to GET ${path}: ${parsed.error.issues[0]?.path.join(".")} ${parsed.error.issues[0]?.message}`,
      );
    return parsed.data;
  }

  const engine: Engine = {
    url,
    ...(via ? { via } : {}),
    async negotiate() {
      const ping = await request("/_ping", { versioned: false });
      if (!ping.ok) throw new EdgeportError("E_DIAL", `engine ${named}: /_ping answered ${ping.status}`);
      const v = await get("/version", Version, false);
      const engineApi = ping.headers.get("api-version") ?? v.ApiVersion;
      if (versionNumber(engineApi) < versionNumber(MIN_API))
        throw new EdgeportError(
          "E_UNSUPPORTED",
          `engine ${named} speaks API ${engineApi}; edgeport needs ${MIN_API} or later`,
        );
      const apiVersion = versionNumber(engineApi) < versionNumber(API_VERSION) ? engineApi : API_VERSION;
      prefix = `/v${apiVersion}`;
      return { apiVersion, engineVersion: v.Version };
    },
    async ping() {
      const r = await request("/_ping", { versioned: false });
      if (!r.ok) throw new EdgeportError("E_DIAL", `engine ${named}: /_ping answered ${r.status}`);
    },
    networks: () => get("/networks", z.array(EngineNetwork)),
    async subnets() {
      const nets = await engine.networks();
      return nets.flatMap((n) => (n.IPAM?.Config ?? []).flatMap((c) => (c.Subnet ? [c.Subnet] : [])));
    },
    async runningContainers() {
      return (await get("/containers/json", ContainerList)).map((c) => c.Id);
    },
    async inspect(id) {
      const res = await request(`/containers/${encodeURIComponent(id)}/json`);
      if (res.status === 404) return null;
      if (!res.ok)
        throw new EdgeportError("E_DIAL", `engine ${named}: inspect ${id.slice(0, 12)} answered ${res.status}`);
      const parsed = ContainerInspect.safeParse(await res.json());
      if (!parsed.success)
        throw new EdgeportError(
          "E_PROTOCOL",
          `engine ${named}: unexpected inspect of ${id.slice(0, 12)}: ${parsed.error.issues[0]?.path.join(".")} ${parsed.error.issues[0]?.message}`,
        );
      return parsed.data;
    },
    async events({ since, signal, onEvent, onOpen }) {
      const filters = encodeURIComponent(JSON.stringify({ type: ["container", "network"] }));
      const res = await request(`/events?filters=${filters}${since ? `&since=${since}` : ""}`, { signal });
      if (!res.ok || !res.body) throw new EdgeportError("E_DIAL", `engine ${named}: /events answered ${res.status}`);
      onOpen?.();
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          const parsed = EngineEvent.safeParse(JSON.parse(line));
          if (parsed.success) onEvent(parsed.data);
        }
      }
    },
  };
  return engine;
}
