/** Pipes over byte streams rather than sockets (a child's stdio, our own): the shared adapters. */
import type { PipeHandlers } from "../mux/pipe.ts";
import type { OnActivity } from "./types.ts";

/** Adapts a FileSink (a child's stdin, our stdout) to the Pipe contract: one flush in flight at a time. */
export function sinkWriter(sink: Bun.FileSink, onDrain: () => void): (d: Uint8Array) => number {
  let flushing = false;
  let closed = false;
  return (d) => {
    if (closed) return -1;
    if (flushing) return 0;
    try {
      sink.write(d);
      const r = sink.flush();
      if (r instanceof Promise) {
        flushing = true;
        r.then(
          () => {
            flushing = false;
            onDrain();
          },
          () => {
            closed = true;
          },
        );
      }
      return d.length;
    } catch {
      closed = true;
      return -1;
    }
  };
}

/** Feeds a readable stream to the pipe's handlers until it ends. */
export async function pumpStream(
  stream: ReadableStream<Uint8Array>,
  h: () => PipeHandlers | null,
  activity: OnActivity,
): Promise<void> {
  for await (const chunk of stream) {
    activity();
    h()?.data(chunk);
  }
}
