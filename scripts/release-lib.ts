/**
 * The pure parts of `bun run release` (scripts/release.ts) and of the build's version stamp:
 * the targets, artifact names, the version string, the Bun pin and the manifest.
 */

/** Every release target (Bun's `--target` without the `bun-` prefix); `-baseline` runs on x64 CPUs without AVX2. */
export const RELEASE_TARGETS = [
  "linux-x64",
  "linux-x64-baseline",
  "linux-arm64",
  "darwin-x64",
  "darwin-x64-baseline",
  "darwin-arm64",
  "windows-x64",
  "windows-x64-baseline",
] as const;
export type ReleaseTarget = (typeof RELEASE_TARGETS)[number];

export const isReleaseTarget = (t: string): t is ReleaseTarget => (RELEASE_TARGETS as readonly string[]).includes(t);

/** The file a target is released as: edgeport-linux-x64, edgeport-windows-x64.exe. */
export const artifactName = (target: string): string =>
  `edgeport-${target}${target.startsWith("windows") ? ".exe" : ""}`;

/**
 * The version a build carries: package.json's version, plus `git describe` as semver build metadata
 * when the checkout is not exactly at the tag `v<version>` ("0.1.0+aeb65e9", "0.1.0+v0.1.0-3-gabc1234.dirty").
 */
export function composeVersion(pkgVersion: string, describe: string | undefined): string {
  const d = describe?.trim();
  if (!d || d === `v${pkgVersion}` || d === pkgVersion) return pkgVersion;
  return `${pkgVersion}+${d.replace(/[^0-9A-Za-z-]+/g, ".").replace(/-dirty$/, ".dirty")}`;
}

/** The Bun version package.json pins (`packageManager: "bun@X"` and `engines.bun: "X"` must agree). */
export function pinnedBun(pkg: { packageManager?: string; engines?: { bun?: string } }): string {
  const pm = /^bun@(\d+\.\d+\.\d+)$/.exec(pkg.packageManager ?? "")?.[1];
  const eng = pkg.engines?.bun;
  if (!pm || !eng || pm !== eng)
    throw new Error(
      `package.json must pin one Bun version in "packageManager" ("bun@X.Y.Z") and "engines.bun" ("X.Y.Z"); found ${JSON.stringify(pkg.packageManager)} and ${JSON.stringify(eng)}`,
    );
  return pm;
}

/** Refuses a Bun other than the pinned one: a release is reproducible only with the runtime it names. */
export function checkBun(running: string, pinned: string): void {
  if (running !== pinned)
    throw new Error(
      `this is Bun ${running}, but package.json pins Bun ${pinned} for builds (npm install -g bun@${pinned})`,
    );
}

export interface Artifact {
  version: string;
  target: string;
  file: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  version: string;
  bun: string;
  artifacts: Artifact[];
}

/** SHA256SUMS in the format `sha256sum -c` and `shasum -a 256 -c` read. */
export const sha256sums = (artifacts: Artifact[]): string => artifacts.map((a) => `${a.sha256}  ${a.file}\n`).join("");

/** The defines that stamp a build with its version and target (read by src/cli/version.ts). */
export const versionDefines = (version: string, target: string): string[] => [
  "--define",
  `EDGEPORT_BUILD_VERSION=${JSON.stringify(version)}`,
  "--define",
  `EDGEPORT_BUILD_TARGET=${JSON.stringify(target)}`,
];

/** The host's target name as the release names it (linux-x64, darwin-arm64, windows-x64). */
export const hostTarget = (platform: string = process.platform, arch: string = process.arch): string =>
  `${platform === "win32" ? "windows" : platform}-${arch}`;
