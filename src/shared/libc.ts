/** Where libc is, for bun:ffi, to try in turn: glibc, then musl (an Alpine or LinuxKit VM running Bun's musl build), then whatever libc.so is. */
export function libcNames(platform: string = process.platform, arch: string = process.arch): string[] {
  if (platform === "darwin") return ["libc.dylib"];
  return ["libc.so.6", `libc.musl-${arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, "libc.so"];
}
