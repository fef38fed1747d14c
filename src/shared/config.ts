/**
 * The config file of `edgeport run` (--config): JSON or TOML, validated by one zod schema that
 * also generates docs/config.schema.json. It holds what the flags hold (a flag on the command line
 * wins), plus what flags cannot say well: ignore rules and reserved ports. Unknown keys are errors
 * that name the key, so a typo never silently does nothing.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { EdgeportError } from "./errors.ts";

const Duration = z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)?$/, 'a duration like "30s", "500ms", "2m"');
const PortOrRange = z.union([
  z.number().int().min(1).max(65535),
  z.string().regex(/^\d{1,5}-\d{1,5}$/, 'a port or a range "8000-8099"'),
]);

export const ConfigSchema = z
  .strictObject({
    relay: z.string().describe("The pipe to the VM forwarder (as --relay)").optional(),
    engine: z.string().describe('The VM engine API, or "none" (as --engine)').optional(),
    binding: z.enum(["open", "local-default", "local-only"]).describe("Host address policy (as --binding)").optional(),
    resync: Duration.describe("Full resync period (as --resync)").optional(),
    "pipe-wait": Duration.describe("How long a new connection waits for a down pipe (as --pipe-wait)").optional(),
    api: z.string().describe('Control API URL, or "none" (as --api)').optional(),
    "api-token-file": z.string().describe("Bearer token file for a tcp:// API (as --api-token-file)").optional(),
    firewall: z
      .enum(["auto", "nftables", "windows", "macos", "none"])
      .describe("Host firewall backend (as --firewall)")
      .optional(),
    "token-file": z.string().describe("Pipe secret file (as --token-file)").optional(),
    window: z
      .number()
      .int()
      .min(16384)
      .max(16777216)
      .describe("Per-channel receive window in bytes at first (as --window)")
      .optional(),
    "window-max": z
      .number()
      .int()
      .min(16384)
      .max(16777216)
      .describe("What a fast channel's window may grow to, in bytes (as --window-max)")
      .optional(),
    keepalive: Duration.describe("Ping after this much silence (as --keepalive)").optional(),
    "dead-after": Duration.describe("Declare the pipe dead after this much silence (as --dead-after)").optional(),
    spin: Duration.describe(
      "Keep a CPU busy for this long after each burst of traffic, Linux, off by default (as --spin)",
    ).optional(),
    "udp-idle": Duration.describe("UDP flow idle timeout (as --udp-idle)").optional(),
    "udp-max-flows": z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .describe("UDP flows per port (as --udp-max-flows)")
      .optional(),
    "log-level": z.enum(["silent", "error", "warn", "info", "debug", "trace"]).optional(),
    "log-format": z.enum(["text", "json"]).optional(),
    ignore: z
      .strictObject({
        ports: z.array(PortOrRange).describe("Host ports never published for containers").optional(),
        containers: z
          .array(z.string().min(1))
          .describe('Container names never published; "*" matches any run of characters')
          .optional(),
        labels: z
          .array(z.string().min(1))
          .describe('Containers with this label ("key") or label value ("key=value") are never published')
          .optional(),
      })
      .describe("Containers and ports edgeport run leaves alone")
      .optional(),
    reserved: z
      .array(PortOrRange)
      .describe("Host ports never published by anyone (default: 22 and the API's TCP port)")
      .optional(),
  })
  .describe("edgeport run configuration (JSON or TOML)");
export type Config = z.infer<typeof ConfigSchema>;

export function configJsonSchema(): unknown {
  return { ...(z.toJSONSchema(ConfigSchema) as object), title: "edgeport run configuration" };
}

export function parseConfig(text: string, where: string): Config {
  let data: unknown;
  const toml = where.endsWith(".toml");
  try {
    data = toml ? Bun.TOML.parse(text) : JSON.parse(text);
  } catch (e) {
    throw new EdgeportError(
      "E_BAD_ARG",
      `--config ${where}: not valid ${toml ? "TOML" : "JSON"}: ${(e as Error).message}`,
    );
  }
  const r = ConfigSchema.safeParse(data);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const path = i.path.join(".");
    const what =
      i.code === "unrecognized_keys"
        ? `unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${path ? `${path}.` : ""}${k}"`).join(", ")}`
        : `"${path}": ${i.message}`;
    throw new EdgeportError("E_BAD_ARG", `--config ${where}: ${what}`);
  }
  for (const p of [...(r.data.ignore?.ports ?? []), ...(r.data.reserved ?? [])]) {
    if (typeof p === "string") {
      const [a, b] = p.split("-").map(Number);
      if (a! < 1 || b! > 65535 || b! < a!)
        throw new EdgeportError("E_BAD_ARG", `--config ${where}: port range "${p}" must be START-END within 1-65535`);
    }
  }
  return r.data;
}

export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new EdgeportError(
      "E_BAD_ARG",
      `--config: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  return parseConfig(text, path);
}

/** Flags given on the command line win; otherwise the file's value; otherwise the flag's default. */
export function mergeArgs<A extends Record<string, unknown>>(args: A, rawArgs: string[], config: Config): A {
  const given = new Set(
    rawArgs.filter((a) => a.startsWith("--")).map((a) => a.slice(2).split("=")[0]!.replace(/^no-/, "")),
  );
  const out: Record<string, unknown> = { ...args };
  for (const [k, v] of Object.entries(config)) {
    if (k === "ignore" || k === "reserved" || v === undefined || given.has(k)) continue;
    out[k] = typeof v === "number" ? String(v) : v;
  }
  return out as A;
}

const inRange = (port: number, p: number | string) =>
  typeof p === "number" ? port === p : port >= Number(p.split("-")[0]) && port <= Number(p.split("-")[1]);
const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`);

export interface PortRules {
  /** why this container's port is ignored, or null */
  ignored(port: number, containerName: string, labels: Record<string, string>): string | null;
  /** why this host port may never be published, or null */
  reserved(port: number): string | null;
}

export function portRules(config: Config, extraReserved: number[] = []): PortRules {
  const reserved = [...(config.reserved ?? [22]), ...extraReserved];
  const names = (config.ignore?.containers ?? []).map((n) => ({ n, re: glob(n) }));
  return {
    ignored(port, name, labels) {
      const p = (config.ignore?.ports ?? []).find((x) => inRange(port, x));
      if (p !== undefined) return `port ${port} is ignored by the config (ignore.ports ${JSON.stringify(p)})`;
      const n = names.find((x) => x.re.test(name));
      if (n) return `container ${name} is ignored by the config (ignore.containers "${n.n}")`;
      for (const l of config.ignore?.labels ?? []) {
        const [k, ...v] = l.split("=");
        if (k! in labels && (v.length === 0 || labels[k!] === v.join("=")))
          return `container ${name} is ignored by the config (ignore.labels "${l}")`;
      }
      return null;
    },
    reserved(port) {
      const r = reserved.find((x) => inRange(port, x));
      return r === undefined
        ? null
        : `port ${port} is reserved (${config.reserved ? `reserved ${JSON.stringify(r)} in the config` : port === 22 ? "ssh" : "edgeport's own API"}) and is never published`;
    },
  };
}
