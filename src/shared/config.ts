/**
 * The config files of `edgeport run` and `edgeport forwarder` (--config, or EDGEPORT_CONFIG, or a
 * default path per OS for run): JSON or TOML, validated by zod schemas that also generate
 * docs/config.schema.json and docs/forwarder.config.schema.json. A file holds what the flags hold,
 * every one of them (a flag on the command line wins), plus for run what flags cannot say well:
 * ignore rules and reserved ports. Unknown keys are errors that name the key, so a typo never
 * silently does nothing. Reading and reporting: config-file.ts.
 */
import { z } from "zod";

/** A unit is required ("5" is not 5 ms); 0 alone is fine (off). */
const Duration = z.string().regex(/^(0|\d+(\.\d+)?(ms|s|m|h))$/, 'a duration with a unit, like "30s", "500ms", "2m"');
const PortOrRange = z.union([
  z.number().int().min(1).max(65535),
  z.string().regex(/^\d{1,5}-\d{1,5}$/, 'a port or a range "8000-8099"'),
]);
const PortOrRangeList = z.array(PortOrRange);
/** What the forwarder reports with --report-listeners, and which of it the host publishes (config-vm-listeners.ts). */
const VmListenersSchema = z
  .strictObject({
    enabled: z.boolean().describe("Publish what the forwarder reports (default true)").optional(),
    include: PortOrRangeList.describe(
      "Ports published although the default ignore list holds them (22, 2375, 2376, 32768-65535)",
    ).optional(),
    ignore: PortOrRangeList.describe("Ports never published for VM listeners").optional(),
    "ignore-processes": z
      .array(z.string().min(1))
      .describe('Listeners of these processes are never published; "*" matches any run of characters')
      .optional(),
  })
  .describe("Listeners of the VM itself (edgeport forwarder --report-listeners), published on the host's loopback");
const Window = z.number().int().min(16384).max(16777216);

/** What every command with a pipe shares (pipeArgs, logArgs), and `$schema` for editors. */
const common = {
  $schema: z.string().describe("The JSON Schema of this file, for editors (ignored)").optional(),
  "token-file": z.string().describe("Pipe secret file (as --token-file); relative to this file").optional(),
  window: Window.describe("Per-channel receive window in bytes at first (as --window)").optional(),
  "window-max": Window.describe("What a fast channel's window may grow to, in bytes (as --window-max)").optional(),
  keepalive: Duration.describe("Ping after this much silence (as --keepalive)").optional(),
  "dead-after": Duration.describe("Declare the pipe dead after this much silence (as --dead-after)").optional(),
  spin: Duration.describe(
    "Keep a CPU busy for this long after each burst of traffic, Linux, off by default (as --spin)",
  ).optional(),
  "log-level": z.enum(["silent", "error", "warn", "info", "debug", "trace"]).describe("As --log-level").optional(),
  "log-format": z.enum(["text", "json"]).describe("As --log-format").optional(),
};

export const ConfigSchema = z
  .strictObject({
    relay: z.string().describe("The pipe to the VM forwarder (as --relay)").optional(),
    engine: z.string().describe('The VM engine API, or "none" (as --engine)').optional(),
    binding: z.enum(["open", "local-default", "local-only"]).describe("Host address policy (as --binding)").optional(),
    resync: Duration.describe("Full resync period (as --resync)").optional(),
    "pipe-wait": Duration.describe("How long a new connection waits for a down pipe (as --pipe-wait)").optional(),
    api: z.string().describe('Control API URL, or "none" (as --api)').optional(),
    "state-dir": z
      .string()
      .describe(
        'Where the daemon keeps the ad-hoc ports it restores at start, or "none" (as --state-dir); relative to this file',
      )
      .optional(),
    "api-token-file": z
      .string()
      .describe("Bearer token file for a tcp:// API (as --api-token-file); relative to this file")
      .optional(),
    firewall: z
      .enum(["auto", "nftables", "windows", "macos", "none"])
      .describe("Host firewall backend (as --firewall)")
      .optional(),
    "firewall-dry-run": z
      .boolean()
      .describe("Print the firewall commands instead of running them (as --firewall-dry-run)")
      .optional(),
    "udp-idle": Duration.describe("UDP flow idle timeout (as --udp-idle)").optional(),
    "udp-max-flows": z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .describe("UDP flows per port (as --udp-max-flows)")
      .optional(),
    ...common,
    publish: z
      .array(z.string().min(1).max(400))
      .describe(
        'Published at start and kept while edgeport run runs, each as "edgeport publish SPEC": ports ("8080:172.17.0.2:80") or socket forwards ("unix:///HOST_PATH:unix:///VM_PATH")',
      )
      .optional(),
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
    "vm-listeners": VmListenersSchema.optional(),
    reserved: z
      .array(PortOrRange)
      .describe("Host ports never published by anyone (default: 22 and the API's TCP port)")
      .optional(),
  })
  .describe("edgeport run configuration (JSON or TOML)");
export type Config = z.infer<typeof ConfigSchema>;

export const ForwarderConfigSchema = z
  .strictObject({
    listen: z.string().describe("Where to accept the pipe (as --listen)").optional(),
    allow: z
      .array(z.string().min(1))
      .describe("Destinations the forwarder may dial: CIDRs or unix:///paths (as --allow, repeated)")
      .optional(),
    engine: z.string().describe("Also allow the subnets of this engine's networks (as --engine)").optional(),
    "vpnkit-compat": z.boolean().describe("Behave like a plain vpnkit forwarder (as --vpnkit-compat)").optional(),
    "control-listen": z.string().describe("VM-local socket for edgeport docker-proxy (as --control-listen)").optional(),
    "dial-timeout": Duration.describe("Give up dialling a destination after this long (as --dial-timeout)").optional(),
    "report-listeners": z
      .boolean()
      .describe("Report what listens in the VM itself to the host (as --report-listeners)")
      .optional(),
    ...common,
  })
  .describe("edgeport forwarder configuration (JSON or TOML)");
export type ForwarderConfig = z.infer<typeof ForwarderConfigSchema>;

/** Keys whose value is a file path (relative: to the config file's directory). */
export const PATH_KEYS = ["token-file", "api-token-file", "state-dir"] as const;
/** Keys whose value is a URL; a relative unix:// path is relative to the config file's directory. */
export const URL_KEYS = ["relay", "engine", "api", "listen", "control-listen"] as const;

export function configJsonSchema(kind: "run" | "forwarder" = "run"): unknown {
  const schema = kind === "run" ? ConfigSchema : ForwarderConfigSchema;
  return { ...(z.toJSONSchema(schema) as object), title: `edgeport ${kind} configuration` };
}

/** Flags given on the command line win; otherwise the file's value; otherwise the flag's default. */
export function mergeArgs<A extends Record<string, unknown>>(
  args: A,
  rawArgs: string[],
  config: Config | ForwarderConfig,
): A {
  const given = new Set(
    rawArgs.filter((a) => a.startsWith("--")).map((a) => a.slice(2).split("=")[0]!.replace(/^no-/, "")),
  );
  const out: Record<string, unknown> = { ...args };
  for (const [k, v] of Object.entries(config)) {
    if (
      k === "ignore" ||
      k === "reserved" ||
      k === "vm-listeners" ||
      k === "publish" ||
      k === "$schema" ||
      v === undefined ||
      given.has(k)
    )
      continue;
    out[k] = typeof v === "number" ? String(v) : v;
  }
  return out as A;
}

export const inRange = (port: number, p: number | string) =>
  typeof p === "number" ? port === p : port >= Number(p.split("-")[0]) && port <= Number(p.split("-")[1]);
export const glob = (pattern: string) =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`);

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
