/**
 * Just enough of the Mach-O format to tell whether a darwin binary carries a code signature:
 * macOS on Apple silicon kills an unsigned arm64 program at launch, and some Bun versions have
 * emitted darwin executables whose signature was missing or pointed past the end of the file.
 */

const MH_MAGIC_64 = 0xfeedfacf;
const LC_CODE_SIGNATURE = 0x1d;
/** CSMAGIC_EMBEDDED_SIGNATURE, the superblob every code signature starts with (big-endian). */
const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0;

export interface CodeSignature {
  /** where the signature blob starts in the file, and its length */
  offset: number;
  size: number;
}

/** The LC_CODE_SIGNATURE of a thin 64-bit little-endian Mach-O file, checked to point at a signature blob. */
export function codeSignature(file: Uint8Array): CodeSignature | { error: string } {
  if (file.length < 32) return { error: "shorter than a Mach-O header" };
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (v.getUint32(0, true) !== MH_MAGIC_64)
    return { error: `not a 64-bit Mach-O file (magic 0x${v.getUint32(0, true).toString(16)})` };
  const ncmds = v.getUint32(16, true);
  const sizeofcmds = v.getUint32(20, true);
  if (32 + sizeofcmds > file.length) return { error: "load commands run past the end of the file" };
  let off = 32;
  for (let i = 0; i < ncmds; i++) {
    if (off + 8 > 32 + sizeofcmds) return { error: `load command ${i} runs past sizeofcmds` };
    const cmd = v.getUint32(off, true);
    const size = v.getUint32(off + 4, true);
    if (size < 8) return { error: `load command ${i} has size ${size}` };
    if (cmd === LC_CODE_SIGNATURE) {
      const dataoff = v.getUint32(off + 8, true);
      const datasize = v.getUint32(off + 12, true);
      if (dataoff + datasize > file.length)
        return { error: `LC_CODE_SIGNATURE points past the end of the file (${dataoff}+${datasize} > ${file.length})` };
      const magic = v.getUint32(dataoff, false);
      if (magic !== CSMAGIC_EMBEDDED_SIGNATURE)
        return { error: `LC_CODE_SIGNATURE does not point at a signature (magic 0x${magic.toString(16)})` };
      return { offset: dataoff, size: datasize };
    }
    off += size;
  }
  return { error: "no LC_CODE_SIGNATURE load command" };
}
