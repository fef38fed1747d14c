/**
 * Which engine URL doctor looks at, and where it came from, the way `edgeport run` picks it today:
 * --engine, the config file's "engine", DOCKER_HOST, then the platform's default socket. Pure and
 * small on purpose: engine discovery (the docker CLI's current context) replaces it with one
 * call of the same shape ({url, source}).
 */
export interface EngineChoice {
  /** unix:///..., tcp://..., npipe:////./pipe/..., or "none" */
  url: string;
  /** where the URL came from: "--engine", "DOCKER_HOST", ... */
  source: string;
}

export function engineChoice(i: {
  flag?: string;
  config?: string;
  configPath?: string;
  env: Record<string, string | undefined>;
  platform: string;
}): EngineChoice {
  if (i.flag) return { url: i.flag, source: "--engine" };
  if (i.config) return { url: i.config, source: `"engine" in ${i.configPath ?? "the config file"}` };
  if (i.env.DOCKER_HOST) return { url: i.env.DOCKER_HOST, source: "DOCKER_HOST" };
  return {
    url: i.platform === "win32" ? "npipe:////./pipe/docker_engine" : "unix:///var/run/docker.sock",
    source: "the platform's default socket",
  };
}
