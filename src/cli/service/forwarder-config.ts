/**
 * The forwarder's config file, read by `edgeport service install --forwarder` (JSON or TOML):
 * the forwarder's own flags, turned into the arguments of its service. Unknown keys are errors.
 */
import { z } from "zod";
import { EdgeportError } from "../../shared/errors.ts";

const Duration = z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)?$/, 'a duration like "30s", "500ms", "2m"');

export const ForwarderConfigSchema = z.strictObject({
  listen: z.string().min(1).describe("Where to accept the pipe (as --listen)"),
  allow: z.array(z.string().min(1)).describe("Destinations the forwarder may dial (as --allow, repeated)").optional(),
  engine: z.string().describe("Also allow this engine's network subnets (as --engine)").optional(),
  "control-listen": z
    .string()
    .describe("The VM-local socket for edgeport docker-proxy (as --control-listen)")
    .optional(),
  "dial-timeout": Duration.optional(),
  "token-file": z.string().optional(),
  window: z.number().int().optional(),
  "window-max": z.number().int().optional(),
  keepalive: Duration.optional(),
  "dead-after": Duration.optional(),
  spin: Duration.optional(),
  "log-level": z.enum(["silent", "error", "warn", "info", "debug", "trace"]).optional(),
  "log-format": z.enum(["text", "json"]).optional(),
});
export type ForwarderConfig = z.infer<typeof ForwarderConfigSchema>;

export function parseForwarderConfig(text: string, where: string): ForwarderConfig {
  let data: unknown;
  const toml = where.endsWith(".toml");
  try {
    data = toml ? Bun.TOML.parse(text) : JSON.parse(text);
  } catch (e) {
    throw new EdgeportError("E_BAD_ARG", `${where}: not valid ${toml ? "TOML" : "JSON"}: ${(e as Error).message}`);
  }
  const r = ForwarderConfigSchema.safeParse(data);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const what =
      i.code === "unrecognized_keys"
        ? `unknown key(s) ${i.keys.map((k) => `"${k}"`).join(", ")}`
        : `"${i.path.join(".")}": ${i.message}`;
    throw new EdgeportError("E_BAD_ARG", `${where}: ${what}`);
  }
  return r.data;
}

/** The forwarder's command line for a config: `forwarder --listen URL --allow A --allow B ...`. */
export function forwarderArgs(c: ForwarderConfig): string[] {
  const out = ["forwarder"];
  for (const [k, v] of Object.entries(c)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push(`--${k}`, String(one));
  }
  return out;
}
