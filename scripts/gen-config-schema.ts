/** Writes docs/config.schema.json and docs/forwarder.config.schema.json from the config's zod schemas (a test checks they are up to date). */
import { join } from "node:path";
import { configJsonSchema } from "../src/shared/config.ts";

export const SCHEMA_PATH = join(import.meta.dir, "..", "docs", "config.schema.json");
export const FORWARDER_SCHEMA_PATH = join(import.meta.dir, "..", "docs", "forwarder.config.schema.json");
export const schemaText = (kind: "run" | "forwarder" = "run") => `${JSON.stringify(configJsonSchema(kind), null, 2)}\n`;

if (import.meta.main) {
  await Bun.write(SCHEMA_PATH, schemaText("run"));
  await Bun.write(FORWARDER_SCHEMA_PATH, schemaText("forwarder"));
  console.log(`wrote ${SCHEMA_PATH} and ${FORWARDER_SCHEMA_PATH}`);
}
