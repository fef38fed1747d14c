/** A FIFO of byte chunks that hands out contiguous views without copying when it can. */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // offset into chunks[0]
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first n bytes, contiguous (a view when they lie in one chunk); does not consume. */
  peek(n: number): Uint8Array {
    if (n > this.length) throw new RangeError(`peek(${n}) beyond ${this.length} queued bytes`);
    const first = this.chunks[0];
    if (first && first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = new Uint8Array(n);
    let filled = 0;
    let off = this.head;
    for (const c of this.chunks) {
      const take = Math.min(n - filled, c.length - off);
      out.set(c.subarray(off, off + take), filled);
      filled += take;
      off = 0;
      if (filled === n) break;
    }
    return out;
  }

  /** Removes and returns the first n bytes, contiguous. */
  take(n: number): Uint8Array {
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  /** Removes and returns the first n bytes as views of the queued chunks: never a copy. */
  takeViews(n: number): Uint8Array[] {
    if (n > this.length) throw new RangeError(`takeViews(${n}) beyond ${this.length} queued bytes`);
    const out: Uint8Array[] = [];
    while (n > 0) {
      const v = this.takeView(n);
      out.push(v);
      n -= v.length;
    }
    return out;
  }

  /** Removes and returns up to max bytes from the first chunk: a view, never a copy. */
  takeView(max: number): Uint8Array {
    const first = this.chunks[0];
    if (!first || max <= 0) return new Uint8Array(0);
    const n = Math.min(max, first.length - this.head);
    const out = first.subarray(this.head, this.head + n);
    this.skip(n);
    return out;
  }

  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const first = this.chunks[0]!;
      const avail = first.length - this.head;
      if (avail > n) {
        this.head += n;
        return;
      }
      n -= avail;
      this.chunks.shift();
      this.head = 0;
    }
  }
}
