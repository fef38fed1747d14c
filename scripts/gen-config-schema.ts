/** Writes docs/config.schema.json from the config's zod schema (a test checks it is up to date). */
import { join } from "node:path";
import { configJsonSchema } from "../src/shared/config.ts";

export const SCHEMA_PATH = join(import.meta.dir, "..", "docs", "config.schema.json");
export const schemaText = () => `${JSON.stringify(configJsonSchema(), null, 2)}\n`;

if (import.meta.main) {
  await Bun.write(SCHEMA_PATH, schemaText());
  console.log(`wrote ${SCHEMA_PATH}`);
}
