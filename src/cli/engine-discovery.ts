/**
 * Which engine `edgeport run` follows, and where that answer came from (pure: files are read
 * through an injected reader). The order is the docker CLI's: --engine, the config file's
 * "engine", DOCKER_HOST, DOCKER_CONTEXT, the docker CLI's current context (config.json
 * `currentContext` and contexts/meta/<sha256 of the name>/meta.json, the way Lima, Colima and
 * Rancher Desktop expose their engines), then the platform's default socket.
 */
import { z } from "zod";
import { EdgeportError } from "../shared/errors.ts";

export interface EngineChoice {
  /** unix:///..., tcp://..., npipe:////./pipe/..., vm:///... (inside the VM, through the pipe), or "none" */
  url: string;
  /** where the URL came from, for every message about the engine: "DOCKER_HOST", "docker context colima (...)" */
  source: string;
}

export interface DiscoveryInput {
  /** --engine on the command line */
  flag?: string;
  /** "engine" in the config file, and that file's path */
  config?: string;
  configPath?: string;
  env: Record<string, string | undefined>;
  platform: string;
  /** the user's home directory */
  home: string;
  /** a file's text, or null when it does not exist */
  read: (path: string) => string | null;
}

const DockerConfig = z.looseObject({ currentContext: z.string().optional() });
const ContextMeta = z.looseObject({
  Name: z.string(),
  Endpoints: z.looseObject({ docker: z.looseObject({ Host: z.string().optional() }).optional() }).optional(),
});

const platformDefault = (platform: string) =>
  platform === "win32" ? "npipe:////./pipe/docker_engine" : "unix:///var/run/docker.sock";

const join = (...parts: string[]) => parts.join("/").replace(/\/+/g, "/");

function parseJson<T>(text: string, schema: z.ZodType<T>, path: string, what: string): T {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new EdgeportError("E_BAD_ARG", `${what}: ${path} is not valid JSON: ${(e as Error).message}`);
  }
  const r = schema.safeParse(data);
  if (!r.success)
    throw new EdgeportError("E_BAD_ARG", `${what}: ${path} is not a docker CLI file: ${r.error.issues[0]?.message}`);
  return r.data;
}

/** The engine URL of a docker CLI context, checked to be one edgeport can dial. */
function contextEngine(name: string, how: string, dir: string, i: DiscoveryInput): EngineChoice {
  const digest = new Bun.CryptoHasher("sha256").update(name).digest("hex");
  const path = join(dir, "contexts/meta", digest, "meta.json");
  const text = i.read(path);
  if (text === null)
    throw new EdgeportError(
      "E_NOT_FOUND",
      `the docker context "${name}" (${how}) has no ${path}; docker context ls shows the contexts, --engine URL chooses the engine`,
    );
  const meta = parseJson(text, ContextMeta, path, `docker context "${name}"`);
  const host = meta.Endpoints?.docker?.Host;
  const source = `docker context "${name}", ${how}, ${path}`;
  if (!host) throw new EdgeportError("E_BAD_ARG", `${source} has no docker endpoint host`);
  if (!/^(unix|tcp|npipe):\/\//.test(host))
    throw new EdgeportError(
      "E_UNSUPPORTED",
      `${source} points at ${host}, which edgeport cannot dial (unix://, tcp:// and npipe:// only); forward that engine's socket and pass --engine unix:///PATH`,
    );
  return { url: host, source };
}

export function discoverEngine(i: DiscoveryInput): EngineChoice {
  if (i.flag) return { url: i.flag, source: "--engine" };
  if (i.config) return { url: i.config, source: `"engine" in ${i.configPath ?? "the config file"}` };
  if (i.env.DOCKER_HOST) return { url: i.env.DOCKER_HOST, source: "DOCKER_HOST" };
  const dir = i.env.DOCKER_CONFIG ?? join(i.home, ".docker");
  const fallback = { url: platformDefault(i.platform), source: "the platform's default socket" };
  if (i.env.DOCKER_CONTEXT && i.env.DOCKER_CONTEXT !== "default")
    return contextEngine(i.env.DOCKER_CONTEXT, "named by DOCKER_CONTEXT", dir, i);
  if (i.env.DOCKER_CONTEXT === "default") return { ...fallback, source: `${fallback.source}, DOCKER_CONTEXT=default` };
  const configPath = join(dir, "config.json");
  const text = i.read(configPath);
  if (text === null) return fallback;
  const current = parseJson(text, DockerConfig, configPath, "the docker CLI's config").currentContext;
  if (!current || current === "default") return fallback;
  return contextEngine(current, `current in ${configPath}`, dir, i);
}
