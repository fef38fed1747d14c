#!/usr/bin/env bun
/**
 * `bun run release`: builds every release target into dist/release/ with SHA256SUMS,
 * manifest.json (version, bun, artifacts: version, target, file, size, sha256) and a copy of the
 * installers (install.sh, install.ps1).
 *   bun scripts/release.ts [--targets linux-x64,darwin-arm64] [--out DIR]
 *   bun scripts/release.ts --rehash [--out DIR]   (after signing: SHA256SUMS and manifest.json again)
 * Needs the Bun version package.json pins. The first build of a foreign target downloads that
 * target's Bun runtime from the npm registry into Bun's cache, once. Every build turns off the
 * runtime's autoloading of .env and bunfig.toml: a service started in some directory must not
 * pick up what happens to lie there.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { $ } from "bun";
import { codeSignature } from "./macho.ts";
import {
  type Artifact,
  artifactName,
  checkBun,
  composeVersion,
  isReleaseTarget,
  type Manifest,
  pinnedBun,
  RELEASE_TARGETS,
  sha256sums,
  versionDefines,
} from "./release-lib.ts";

const ROOT = resolve(import.meta.dir, "..");

/** The flags every release build uses (scripts/build.ts uses them too). */
export const COMPILE_FLAGS = [
  "--compile",
  "--minify-syntax",
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
] as const;

const OWN_FILES = ["SHA256SUMS", "manifest.json", "install.sh", "install.ps1"];

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** package.json's version plus `git describe` when this is a git checkout. */
export async function releaseVersion(root = ROOT): Promise<string> {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  const d = await $`git describe --tags --always --dirty`.cwd(root).quiet().nothrow();
  return composeVersion(pkg.version, d.exitCode === 0 ? d.stdout.toString() : undefined);
}

async function buildOne(target: string, version: string, out: string): Promise<Artifact> {
  const file = artifactName(target);
  const path = join(out, file);
  const t0 = performance.now();
  const r =
    await $`bun build ${COMPILE_FLAGS} --target bun-${target} ${versionDefines(version, target)} src/main.ts --outfile ${path}`
      .cwd(ROOT)
      .quiet()
      .nothrow();
  if (r.exitCode !== 0) throw new Error(`building ${target} failed:\n${r.stderr}${r.stdout}`);
  const a = await describe(out, target, version);
  console.log(`built ${file} (${(a.size / 2 ** 20).toFixed(1)} MiB) in ${Math.round(performance.now() - t0)} ms`);
  return a;
}

/** The manifest entry of a built file; a darwin file must carry a code signature. */
async function describe(out: string, target: string, version: string): Promise<Artifact> {
  const file = artifactName(target);
  const bytes = new Uint8Array(await Bun.file(join(out, file)).arrayBuffer());
  if (target.startsWith("darwin")) {
    const sig = codeSignature(bytes);
    if ("error" in sig) throw new Error(`${file}: ${sig.error}; macOS would kill it at launch, not releasing it`);
  }
  const sha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
  return { version, target, file, size: statSync(join(out, file)).size, sha256 };
}

function write(out: string, manifest: Manifest): void {
  writeFileSync(join(out, "SHA256SUMS"), sha256sums(manifest.artifacts));
  writeFileSync(join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** --rehash: SHA256SUMS and manifest.json again from the files (after signing changed them). */
async function rehash(out: string): Promise<void> {
  const old = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as Manifest;
  const artifacts: Artifact[] = [];
  for (const a of old.artifacts) artifacts.push(await describe(out, a.target, old.version));
  write(out, { ...old, artifacts });
  for (const a of artifacts) console.log(`${a.sha256}  ${a.file}`);
}

async function main(): Promise<void> {
  const out = resolve(flag("--out") ?? join(ROOT, "dist/release"));
  if (process.argv.includes("--rehash")) return rehash(out);
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const bun = pinnedBun(pkg);
  checkBun(Bun.version, bun);
  const wanted = (flag("--targets") ?? RELEASE_TARGETS.join(",")).split(",").filter(Boolean);
  const bad = wanted.filter((t) => !isReleaseTarget(t));
  if (bad.length) throw new Error(`unknown target(s) ${bad.join(", ")}; one of ${RELEASE_TARGETS.join(", ")}`);
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(out)) if (f.startsWith("edgeport-") || OWN_FILES.includes(f)) rmSync(join(out, f));
  const version = await releaseVersion();
  const artifacts: Artifact[] = [];
  for (const t of wanted) artifacts.push(await buildOne(t, version, out));
  write(out, { version, bun, artifacts });
  // the installers travel with the release: `curl -fsSL URL/install.sh | sh -s -- URL`
  for (const f of ["install.sh", "install.ps1"]) copyFileSync(join(ROOT, "scripts", f), join(out, f));
  console.log(`release ${version}: ${artifacts.length} artifact(s), SHA256SUMS and manifest.json in ${out}`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`release: ${(e as Error).message}`);
    process.exit(1);
  }
}
