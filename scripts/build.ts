#!/usr/bin/env bun
/**
 * Builds the single edgeport binary: `bun run build` -> dist/edgeport.
 * `bun scripts/build.ts --target bun-windows-x64` (or bun-darwin-arm64...) cross-compiles.
 * The binary never reads ./bunfig.toml or ./.env from the directory it starts in: a bunfig
 * `preload` there would run code in edgeport (as root under sudo), a .env would set EDGEPORT_API,
 * DOCKER_HOST and the rest (issue 16; test/e2e/hostile-cwd.test.ts).
 */
import { $ } from "bun";
import { releaseVersion } from "./release.ts";
import { hostTarget, versionDefines } from "./release-lib.ts";

const i = process.argv.indexOf("--target");
const target = i > 0 ? process.argv[i + 1] : undefined;
const suffix = target ? `-${target.replace(/^bun-/, "")}${target.includes("windows") ? ".exe" : ""}` : "";
const outfile = `dist/edgeport${suffix}`;
const stamp = versionDefines(await releaseVersion(), target?.replace(/^bun-/, "") ?? hostTarget());
const t0 = performance.now();
await $`bun build --compile --no-compile-autoload-dotenv --no-compile-autoload-bunfig --minify-syntax ${target ? ["--target", target] : []} ${stamp} src/main.ts --outfile ${outfile}`.quiet();
console.log(`built ${outfile} in ${Math.round(performance.now() - t0)} ms`);
