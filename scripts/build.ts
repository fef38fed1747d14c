#!/usr/bin/env bun
/**
 * Builds the single edgeport binary: `bun run build` -> dist/edgeport.
 * `bun scripts/build.ts --target bun-windows-x64` (or bun-darwin-arm64...) cross-compiles.
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
await $`bun build --compile --minify-syntax ${target ? ["--target", target] : []} ${stamp} src/main.ts --outfile ${outfile}`.quiet();
console.log(`built ${outfile} in ${Math.round(performance.now() - t0)} ms`);
