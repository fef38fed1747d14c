/**
 * Reading a config file: which file (--config, EDGEPORT_CONFIG, the default path per OS), TOML
 * (smol-toml: its errors carry line and column) or JSON, every problem reported at once, and
 * relative paths resolved against the file's directory. Throws EdgeportError E_BAD_ARG.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import type { z } from "zod";
import {
  type Config,
  ConfigSchema,
  type ForwarderConfig,
  ForwarderConfigSchema,
  PATH_KEYS,
  URL_KEYS,
} from "./config.ts";
import { EdgeportError } from "./errors.ts";
import { parsePortSpec } from "./port-spec.ts";

type Env = Record<string, string | undefined>;

/** Where `edgeport run` looks for a config file when neither --config nor EDGEPORT_CONFIG names one. */
export function defaultConfigDir(env: Env, platform: string, home: string): string {
  if (platform === "win32") return join(env.APPDATA ?? join(home, "AppData", "Roaming"), "edgeport");
  if (platform === "darwin") return join(home, "Library", "Application Support", "edgeport");
  return join(env.XDG_CONFIG_HOME || join(home, ".config"), "edgeport");
}

/**
 * The config file to read: --config, else EDGEPORT_CONFIG (both must exist), else (for run)
 * edgeport.toml or edgeport.json in the default directory when one is there; else none.
 */
export function configPath(
  flag: string | undefined,
  o: { env: Env; platform: string; home: string; defaults: boolean },
): string | undefined {
  if (flag) return flag;
  if (o.env.EDGEPORT_CONFIG) return o.env.EDGEPORT_CONFIG;
  if (!o.defaults) return undefined;
  const dir = defaultConfigDir(o.env, o.platform, o.home);
  return ["edgeport.toml", "edgeport.json"].map((f) => join(dir, f)).find((p) => existsSync(p));
}

function syntax(text: string, where: string): unknown {
  if (/\.ya?ml$/i.test(where))
    throw new EdgeportError("E_BAD_ARG", `--config ${where}: YAML is not read; use .toml or .json`);
  const toml = /\.toml$/i.test(where);
  try {
    return toml ? parseToml(text) : JSON.parse(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const why = e.message.replace(/^Invalid TOML document: /, "").split("\n")[0];
      throw new EdgeportError("E_BAD_ARG", `--config ${where}:${e.line}:${e.column}: not valid TOML: ${why}`);
    }
    const m = /line (\d+) column (\d+)/.exec((e as Error).message);
    const at = m ? `:${m[1]}:${m[2]}` : "";
    throw new EdgeportError("E_BAD_ARG", `--config ${where}${at}: not valid JSON: ${(e as Error).message}`);
  }
}

function issueText(i: z.core.$ZodIssue): string[] {
  const path = i.path.join(".");
  if (i.code === "unrecognized_keys") return i.keys.map((k) => `unknown key "${path ? `${path}.` : ""}${k}"`);
  return [`"${path}": ${i.message}`];
}

function rangeProblems(ports: (number | string)[]): string[] {
  return ports.flatMap((p) => {
    if (typeof p !== "string") return [];
    const [a, b] = p.split("-").map(Number);
    return a! < 1 || b! > 65535 || b! < a! ? [`port range "${p}" must be START-END within 1-65535`] : [];
  });
}

/** Every spec of "publish" as `edgeport publish` reads it (a container name is resolved later). */
function specProblems(specs: string[]): string[] {
  return specs.flatMap((spec, i) => {
    try {
      parsePortSpec(spec, { targetNames: true });
      return [];
    } catch (e) {
      return [`"publish.${i}": ${(e as Error).message}`];
    }
  });
}

/** Relative file paths and unix:// paths become relative to the config file's directory. */
function resolvePaths<T extends Record<string, unknown>>(data: T, dir: string): T {
  const out: Record<string, unknown> = { ...data };
  for (const k of PATH_KEYS) {
    const v = out[k];
    if (typeof v === "string" && !isAbsolute(v) && v !== "none") out[k] = resolve(dir, v); // state-dir = "none": off
  }
  for (const k of URL_KEYS) {
    const v = out[k];
    if (typeof v === "string" && v.startsWith("unix://") && !isAbsolute(v.slice(7)) && v.length > 7)
      out[k] = `unix://${resolve(dir, v.slice(7))}`;
  }
  return out as T;
}

export function parseConfig(text: string, where: string): Config;
export function parseConfig(text: string, where: string, kind: "forwarder"): ForwarderConfig;
export function parseConfig(text: string, where: string, kind: "run" | "forwarder" = "run"): Config | ForwarderConfig {
  const data = syntax(text, where);
  const r = (kind === "run" ? ConfigSchema : ForwarderConfigSchema).safeParse(data);
  const problems = r.success ? [] : r.error.issues.flatMap(issueText);
  if (r.success && kind === "run") {
    const c = r.data as Config;
    problems.push(...rangeProblems([...(c.ignore?.ports ?? []), ...(c.reserved ?? [])]));
    problems.push(...specProblems(c.publish ?? []));
  }
  if (problems.length === 1) throw new EdgeportError("E_BAD_ARG", `--config ${where}: ${problems[0]}`);
  if (problems.length)
    throw new EdgeportError(
      "E_BAD_ARG",
      `--config ${where}: ${problems.length} problems:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
  return resolvePaths(r.data as Config | ForwarderConfig, dirname(resolve(where)));
}

export function loadConfig(path: string): Config;
export function loadConfig(path: string, kind: "forwarder"): ForwarderConfig;
export function loadConfig(path: string, kind: "run" | "forwarder" = "run"): Config | ForwarderConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new EdgeportError(
      "E_BAD_ARG",
      `--config: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  return kind === "run" ? parseConfig(text, path) : parseConfig(text, path, "forwarder");
}
