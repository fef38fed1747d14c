import { defineCommand } from "citty";
import { MAGIC_TEXT } from "../relay/mux/constants.ts";
import { VERSION } from "./common.ts";
import { contextOf } from "./context.ts";

export default defineCommand({
  meta: { name: "version", description: "Print edgeport's version, runtime and protocol" },
  args: { json: { type: "boolean", description: "Print as JSON" } },
  run({ args, data }) {
    const ctx = contextOf(data);
    const info = {
      edgeport: VERSION,
      bun: Bun.version,
      platform: `${ctx.platform}-${ctx.arch}`,
      protocol: MAGIC_TEXT.trim(),
    };
    console.log(
      args.json
        ? JSON.stringify(info)
        : `edgeport ${info.edgeport} (bun ${info.bun}, ${info.platform})\nprotocol: ${info.protocol} + edgeport extensions v1`,
    );
  },
});
