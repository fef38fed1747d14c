/**
 * `bun run release` for real: builds three targets into a temp directory (the first cross-compile
 * of a target downloads its Bun runtime from the npm registry into Bun's cache, once) and checks the
 * manifest and SHA256SUMS against the files, the darwin code signatures, the version the binary
 * reports, and that a release binary reads neither .env nor bunfig.toml from its working directory.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { $ } from "bun";
import { codeSignature } from "../../scripts/macho.ts";
import { releaseVersion } from "../../scripts/release.ts";
import { type Manifest, sha256sums } from "../../scripts/release-lib.ts";

const ROOT = resolve(import.meta.dir, "../..");
const out = mkdtempSync(join(tmpdir(), "edgeport-release-"));
const TARGETS = ["linux-x64", "darwin-arm64", "darwin-x64"];
let manifest: Manifest;
let buildMs = 0;

beforeAll(async () => {
  const t0 = performance.now();
  const r = await $`bun scripts/release.ts --targets ${TARGETS.join(",")} --out ${out}`.cwd(ROOT).quiet().nothrow();
  buildMs = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`release failed: ${r.stderr}${r.stdout}`);
  manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
}, 300_000);
afterAll(() => {
  console.log(`release of ${TARGETS.length} targets took ${Math.round(buildMs)} ms`);
  rmSync(out, { recursive: true, force: true });
});

const sha256 = (path: string) => new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");

describe("bun run release", () => {
  test("the manifest lists every target built, with the size and sha256 of the file on disk", async () => {
    expect(manifest.version).toBe(await releaseVersion(ROOT));
    expect(manifest.bun).toBe(Bun.version);
    expect(manifest.artifacts.map((a) => a.target)).toEqual(TARGETS);
    for (const a of manifest.artifacts) {
      expect(a.file).toBe(`edgeport-${a.target}`);
      expect(a.version).toBe(manifest.version);
      expect(a.size).toBe(statSync(join(out, a.file)).size);
      expect(a.sha256).toBe(sha256(join(out, a.file)));
    }
  });

  test("SHA256SUMS agrees with the manifest and with sha256sum -c", async () => {
    expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toBe(sha256sums(manifest.artifacts));
    expect(readdirSync(out).sort()).toEqual(
      ["SHA256SUMS", "install.ps1", "install.sh", "manifest.json", ...manifest.artifacts.map((a) => a.file)].sort(),
    );
    const r = await $`sha256sum -c SHA256SUMS`.cwd(out).quiet().nothrow();
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString().trim().split("\n")).toHaveLength(TARGETS.length);
  });

  test("each darwin artifact carries an LC_CODE_SIGNATURE that points at a signature blob", () => {
    for (const a of manifest.artifacts.filter((x) => x.target.startsWith("darwin"))) {
      const sig = codeSignature(readFileSync(join(out, a.file)));
      expect(sig).not.toHaveProperty("error");
      expect((sig as { size: number }).size).toBeGreaterThan(0);
    }
  });

  test("edgeport version --json reports the manifest's fields for itself", async () => {
    const a = manifest.artifacts.find((x) => x.target === "linux-x64")!;
    const r = await $`${join(out, a.file)} version --json`.quiet();
    expect(JSON.parse(r.stdout.toString())).toMatchObject(a);
  });

  test("--rehash writes SHA256SUMS and the manifest again after a file changed (as signing does)", async () => {
    const a = manifest.artifacts.find((x) => x.target === "linux-x64")!;
    appendFileSync(join(out, a.file), "signature");
    const r = await $`bun scripts/release.ts --rehash --out ${out}`.cwd(ROOT).quiet().nothrow();
    expect(r.exitCode).toBe(0);
    const after: Manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    const b = after.artifacts.find((x) => x.target === "linux-x64")!;
    expect(b).toEqual({ ...a, size: a.size + 9, sha256: sha256(join(out, a.file)) });
    expect(b.sha256).not.toBe(a.sha256);
    expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toBe(sha256sums(after.artifacts));
    expect((await $`sha256sum -c SHA256SUMS`.cwd(out).quiet().nothrow()).exitCode).toBe(0);
  });

  test("a release binary reads neither .env nor bunfig.toml from its working directory", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "edgeport-cwd-"));
    try {
      writeFileSync(join(cwd, ".env"), "EDGEPORT_API=unix:///tmp/from-dotenv.sock\n");
      writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./preload.ts"]\n');
      writeFileSync(join(cwd, "preload.ts"), 'console.log("PRELOADED FROM bunfig.toml");\n');
      const r = await $`${join(out, "edgeport-linux-x64")} ls --api unix:///tmp/edgeport-release-none.sock`
        .cwd(cwd)
        .env({ PATH: process.env.PATH ?? "" })
        .quiet()
        .nothrow();
      const text = `${r.stdout}${r.stderr}`;
      expect(text).toContain("edgeport-release-none.sock");
      expect(text).not.toContain("PRELOADED");
      const env = await $`${join(out, "edgeport-linux-x64")} ls`
        .cwd(cwd)
        .env({ PATH: process.env.PATH ?? "" })
        .quiet()
        .nothrow();
      expect(`${env.stdout}${env.stderr}`).not.toContain("from-dotenv");
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
