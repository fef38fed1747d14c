/**
 * scripts/install.sh against a real release (one target, built here): from a directory, from a
 * local HTTP server on 127.0.0.1, a corrupted file refused over both, the prefix a non-root user
 * gets, and a target the release lacks. Every install goes to a temp prefix.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { $ } from "bun";
import type { Manifest } from "../../scripts/release-lib.ts";

const ROOT = resolve(import.meta.dir, "../..");
const INSTALL = join(ROOT, "scripts/install.sh");
const work = mkdtempSync(join(tmpdir(), "edgeport-install-"));
const good = join(work, "release");
const bad = join(work, "corrupt");
const target = `linux-x64${readFileSync("/proc/cpuinfo", "utf8").includes(" avx2") ? "" : "-baseline"}`;
let manifest: Manifest;
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  const r = await $`bun scripts/release.ts --targets ${target} --out ${good}`.cwd(ROOT).quiet().nothrow();
  if (r.exitCode !== 0) throw new Error(`release failed: ${r.stderr}`);
  manifest = JSON.parse(readFileSync(join(good, "manifest.json"), "utf8"));
  // the same release with one byte of the binary changed
  mkdirSync(bad);
  for (const f of readdirSync(good)) copyFileSync(join(good, f), join(bad, f));
  const bytes = readFileSync(join(bad, `edgeport-${target}`));
  bytes[bytes.length >> 1]! ^= 0xff;
  writeFileSync(join(bad, `edgeport-${target}`), bytes);
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const [, dir, name] = new URL(req.url).pathname.split("/");
      const base = dir === "good" ? good : dir === "bad" ? bad : null;
      const path = base && name && !name.includes("..") ? join(base, name) : null;
      return path && existsSync(path) ? new Response(Bun.file(path)) : new Response("not found", { status: 404 });
    },
  });
}, 120_000);
afterAll(() => {
  server?.stop(true);
  rmSync(work, { recursive: true, force: true });
});

const install = (args: string[], env: Record<string, string> = {}) =>
  $`sh ${INSTALL} ${args}`
    .env({ PATH: process.env.PATH ?? "", HOME: work, ...env })
    .quiet()
    .nothrow();

function freshPrefix(name: string): string {
  const p = join(work, name);
  rmSync(p, { recursive: true, force: true });
  return p;
}

async function expectInstalled(prefix: string, out: string) {
  const a = manifest.artifacts[0]!;
  const v = await $`${join(prefix, "edgeport")} version --json`.quiet();
  expect(JSON.parse(v.stdout.toString())).toMatchObject({ version: a.version, target, sha256: a.sha256 });
  expect(out).toContain(`installed edgeport ${a.version}`);
  expect(out).toContain("next: ");
  expect(readdirSync(prefix)).toEqual(["edgeport"]);
}

describe("install.sh", () => {
  test("from a release directory, picking this machine's target", async () => {
    const prefix = freshPrefix("p-dir");
    const r = await install(["--prefix", prefix, good]);
    expect(r.exitCode).toBe(0);
    await expectInstalled(prefix, r.stdout.toString());
  });

  test("from a base URL on a local HTTP server", async () => {
    const prefix = freshPrefix("p-http");
    const r = await install(["--prefix", prefix, `http://127.0.0.1:${server.port}/good/`]);
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    await expectInstalled(prefix, r.stdout.toString());
  });

  test.each(["dir", "http"])(
    "a corrupted file (%s) is refused, naming both sums, and nothing is installed",
    async (how) => {
      const prefix = freshPrefix(`p-bad-${how}`);
      const src = how === "dir" ? bad : `http://127.0.0.1:${server.port}/bad`;
      const r = await install(["--prefix", prefix, src]);
      expect(r.exitCode).toBe(1);
      const want = manifest.artifacts[0]!.sha256;
      const got = new Bun.CryptoHasher("sha256").update(readFileSync(join(bad, `edgeport-${target}`))).digest("hex");
      expect(r.stderr.toString()).toContain(
        `checksum mismatch for edgeport-${target}: SHA256SUMS says ${want}, the downloaded file is ${got}; not installing`,
      );
      expect(existsSync(prefix)).toBe(false);
    },
  );

  test("a corrupted install over a good one leaves the good one in place", async () => {
    const prefix = freshPrefix("p-over");
    expect((await install(["--prefix", prefix, good])).exitCode).toBe(0);
    expect((await install(["--prefix", prefix, bad])).exitCode).toBe(1);
    await expectInstalled(prefix, `installed edgeport ${manifest.version}\nnext: `);
  });

  test("root gets /usr/local/bin, another user ~/.local/bin", async () => {
    expect((await install(["--dry-run", good])).stdout.toString()).toBe(
      `would install edgeport-${target} from ${good} to /usr/local/bin/edgeport\n`,
    );
    const home = join(work, "home-nobody");
    mkdirSync(home, { recursive: true });
    for (const d of [work, good, home]) chmodSync(d, 0o755);
    await $`chown 65534:65534 ${home}`;
    const r = await $`setpriv --reuid=65534 --regid=65534 --clear-groups sh ${INSTALL} ${good}`
      .env({ PATH: process.env.PATH ?? "", HOME: home })
      .quiet()
      .nothrow();
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    await expectInstalled(join(home, ".local/bin"), r.stdout.toString());
    expect(r.stdout.toString()).toContain(`note: ${home}/.local/bin is not on your PATH`);
  });

  test("a target the release lacks is named with what it has", async () => {
    const r = await install(["--prefix", freshPrefix("p-none"), "--target", "darwin-arm64", good]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain(
      `this release has no edgeport-darwin-arm64 (SHA256SUMS lists: edgeport-${target}`,
    );
  });
});
