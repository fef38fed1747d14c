import { basename } from "node:path";
import { defineCommand } from "citty";
import { MAGIC_TEXT } from "../relay/mux/constants.ts";
import { VERSION } from "./common.ts";
import { contextOf } from "./context.ts";

// Stamped by scripts/build.ts and scripts/release.ts (`bun build --define`); absent under `bun src/main.ts`.
declare const EDGEPORT_BUILD_VERSION: string | undefined;
declare const EDGEPORT_BUILD_TARGET: string | undefined;

/** The version this build carries: package.json's plus `git describe` ("0.1.0+aeb65e9"), or VERSION unbuilt. */
export const BUILD_VERSION = typeof EDGEPORT_BUILD_VERSION === "string" ? EDGEPORT_BUILD_VERSION : VERSION;
/** The release target this binary was built for (linux-x64-baseline...), or null when run from source. */
export const BUILD_TARGET = typeof EDGEPORT_BUILD_TARGET === "string" ? EDGEPORT_BUILD_TARGET : null;

/** The fields of a release manifest entry, for the running executable (file, size, sha256 null from source). */
async function selfInfo(
  execPath: string,
): Promise<{ file: string | null; size: number | null; sha256: string | null }> {
  if (BUILD_TARGET === null) return { file: null, size: null, sha256: null };
  const bytes = await Bun.file(execPath).arrayBuffer();
  return {
    file: basename(execPath),
    size: bytes.byteLength,
    sha256: new Bun.CryptoHasher("sha256").update(bytes).digest("hex"),
  };
}

export default defineCommand({
  meta: { name: "version", description: "Print edgeport's version, build target, runtime and protocol" },
  args: {
    json: {
      type: "boolean",
      description: "Print as JSON, with the fields of a release manifest entry (version, target, file, size, sha256)",
    },
  },
  async run({ args, data }) {
    const ctx = contextOf(data);
    const platform = `${ctx.platform}-${ctx.arch}`;
    const protocol = MAGIC_TEXT.trim();
    if (!args.json) {
      console.log(
        `edgeport ${BUILD_VERSION} (${BUILD_TARGET ?? "from source"}, bun ${Bun.version}, ${platform})\nprotocol: ${protocol} + edgeport extensions v1`,
      );
      return;
    }
    const info = {
      version: BUILD_VERSION,
      target: BUILD_TARGET,
      ...(await selfInfo(ctx.execPath)),
      edgeport: VERSION,
      bun: Bun.version,
      platform,
      protocol,
    };
    console.log(JSON.stringify(info));
  },
});
