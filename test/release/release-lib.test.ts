import { describe, expect, test } from "bun:test";
import { codeSignature } from "../../scripts/macho.ts";
import { artifactName, checkBun, composeVersion, pinnedBun, sha256sums } from "../../scripts/release-lib.ts";

describe("composeVersion", () => {
  test.each([
    ["0.1.0", undefined, "0.1.0"],
    ["0.1.0", "", "0.1.0"],
    ["0.1.0", "v0.1.0\n", "0.1.0"],
    ["0.1.0", "aeb65e9", "0.1.0+aeb65e9"],
    ["0.1.0", "aeb65e9-dirty", "0.1.0+aeb65e9.dirty"],
    ["0.1.0", "v0.1.0-3-gabc1234", "0.1.0+v0.1.0-3-gabc1234"],
    ["0.2.0", "v0.1.0-3-gabc1234-dirty", "0.2.0+v0.1.0-3-gabc1234.dirty"],
  ])("%s with describe %p -> %s", (pkg, d, want) => {
    const v = composeVersion(pkg, d);
    expect(v).toBe(want);
    expect(v).toMatch(/^\d+\.\d+\.\d+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/); // semver with build metadata
  });
});

describe("the Bun pin", () => {
  test("packageManager and engines.bun must name the same exact version", () => {
    expect(pinnedBun({ packageManager: "bun@1.4.5", engines: { bun: "1.4.5" } })).toBe("1.4.5");
    expect(() => pinnedBun({ packageManager: "bun@1.4.5", engines: { bun: "1.4.4" } })).toThrow(/pin one Bun/);
    expect(() => pinnedBun({ packageManager: "bun@1.4.5" })).toThrow(/engines.bun/);
    expect(() => pinnedBun({ packageManager: "bun@^1.4", engines: { bun: "^1.4" } })).toThrow(/pin one Bun/);
  });
  test("package.json pins the Bun that runs this test", async () => {
    expect(pinnedBun(await Bun.file(`${import.meta.dir}/../../package.json`).json())).toBe(Bun.version);
  });
  test("another Bun is refused, naming both", () => {
    expect(() => checkBun("1.4.4", "1.4.5")).toThrow(/this is Bun 1\.4\.4, but package\.json pins Bun 1\.4\.5/);
    expect(() => checkBun("1.4.5", "1.4.5")).not.toThrow();
  });
});

test("artifact names and SHA256SUMS lines", () => {
  expect(artifactName("windows-x64-baseline")).toBe("edgeport-windows-x64-baseline.exe");
  expect(artifactName("darwin-arm64")).toBe("edgeport-darwin-arm64");
  const a = { version: "1", target: "linux-x64", file: "edgeport-linux-x64", size: 1, sha256: "ab".repeat(32) };
  expect(sha256sums([a])).toBe(`${"ab".repeat(32)}  edgeport-linux-x64\n`);
});

/** A 64-bit Mach-O header with the given load commands ([cmd, ...payload u32s]) and trailing bytes. */
function macho(cmds: number[][], tail: Uint8Array = new Uint8Array(0)): Uint8Array {
  const sizeofcmds = cmds.reduce((n, c) => n + 8 + (c.length - 1) * 4, 0);
  const buf = new Uint8Array(32 + sizeofcmds + tail.length);
  const v = new DataView(buf.buffer);
  v.setUint32(0, 0xfeedfacf, true);
  v.setUint32(16, cmds.length, true);
  v.setUint32(20, sizeofcmds, true);
  let off = 32;
  for (const [cmd, ...rest] of cmds) {
    v.setUint32(off, cmd!, true);
    v.setUint32(off + 4, 8 + rest.length * 4, true);
    for (const [i, x] of rest.entries()) v.setUint32(off + 8 + i * 4, x, true);
    off += 8 + rest.length * 4;
  }
  buf.set(tail, off);
  return buf;
}

describe("codeSignature (Mach-O)", () => {
  const blob = new Uint8Array([0xfa, 0xde, 0x0c, 0xc0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0]);
  test("finds LC_CODE_SIGNATURE after other load commands", () => {
    const f = macho(
      [
        [0x19, 0, 0, 0, 0],
        [0x1d, 32 + 8 + 16 + 16, 16],
      ],
      blob,
    );
    expect(codeSignature(f)).toEqual({ offset: 72, size: 16 });
  });
  test.each([
    ["no load command", macho([[0x19, 0, 0]]), /no LC_CODE_SIGNATURE/],
    ["past the end", macho([[0x1d, 40, 4096]], blob), /past the end/],
    ["not a signature", macho([[0x1d, 40, 16]], new Uint8Array(16)), /does not point at a signature/],
    ["an ELF file", new Uint8Array([0x7f, 0x45, 0x4c, 0x46, ...new Array(60).fill(0)]), /not a 64-bit Mach-O/],
    ["a truncated file", new Uint8Array(10), /shorter than/],
  ])("%s is reported", (_, file, want) => {
    const r = codeSignature(file);
    expect("error" in r && r.error).toMatch(want);
  });
});
