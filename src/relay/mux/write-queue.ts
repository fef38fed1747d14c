/**
 * The pipe's outgoing bytes, as the pieces they were queued in (frame headers, control frames,
 * payload views), and how they are written: a large piece (a Data payload) as it is, the small
 * ones around it coalesced into one reusable buffer. No payload byte is copied in user space.
 */

/** small pieces are coalesced into this reusable buffer */
const BATCH_BUFFER = 64 * 1024;
/** pieces this large are written directly, without being copied into the batch */
const DIRECT_WRITE = 16 * 1024;

export class WriteQueue {
  private pieces: Uint8Array[] = [];
  /** bytes queued and not yet written */
  bytes = 0;
  /** one reusable buffer: a fresh 256 KiB allocation per batch cost more than the copy itself */
  private batch: Uint8Array | null = null;

  push(piece: Uint8Array): void {
    this.pieces.push(piece);
    this.bytes += piece.length;
  }

  /**
   * One write of the next piece or run of small pieces. Returns what `write` returned: -1 when
   * the pipe is closed, fewer bytes than offered when it is full (the unwritten tail is kept first
   * in line, copied out of the reusable buffer where it came from there).
   */
  writeNext(write: (buf: Uint8Array) => number): { written: number; full: boolean } {
    const first = this.pieces[0]!;
    const direct = first.length >= DIRECT_WRITE;
    const [buf, count] = direct ? [first, 1] : this.gather();
    const n = write(buf);
    if (n < 0) return { written: n, full: false };
    this.bytes -= n;
    this.pieces.splice(0, count);
    if (n < buf.length) {
      this.pieces.unshift(direct ? buf.subarray(n) : buf.slice(n));
      return { written: n, full: true };
    }
    return { written: n, full: false };
  }

  /** Copies the leading small pieces into the reusable buffer, up to the next large one: the bytes and how many pieces. */
  private gather(): [Uint8Array, number] {
    this.batch ??= new Uint8Array(BATCH_BUFFER);
    let o = 0;
    let i = 0;
    for (; i < this.pieces.length; i++) {
      const p = this.pieces[i]!;
      if (p.length >= DIRECT_WRITE || o + p.length > BATCH_BUFFER) break;
      this.batch.set(p, o);
      o += p.length;
    }
    return [this.batch.subarray(0, o), i];
  }
}
