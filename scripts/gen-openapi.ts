/** Writes docs/openapi.json, the control API's OpenAPI document, from its route table and zod schemas (a test checks it is up to date). */
import { join } from "node:path";
import { openApiDocument } from "../src/publisher/control-api/openapi.ts";

export const OPENAPI_PATH = join(import.meta.dir, "..", "docs", "openapi.json");
export const openApiText = () => `${JSON.stringify(openApiDocument(), null, 2)}\n`;

if (import.meta.main) {
  await Bun.write(OPENAPI_PATH, openApiText());
  console.log(`wrote ${OPENAPI_PATH}`);
}
