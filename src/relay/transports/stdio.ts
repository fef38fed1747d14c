/** stdio: the forwarder's own stdin and stdout are the pipe (the VM end of an exec: pipe). */
import type { Pipe, PipeHandlers } from "../mux/pipe.ts";
import { pumpStream, sinkWriter } from "./stream.ts";
import type { OnActivity, OnPipe, PipeListener } from "./types.ts";

export function stdioPipe(onPipe: OnPipe, activity: OnActivity): PipeListener {
  let handlers: PipeHandlers | null = null;
  const out = Bun.stdout.writer();
  const pipe: Pipe = {
    description: "stdio:",
    write: sinkWriter(out, () => handlers?.drain()),
    close: () => {
      out.end();
    },
  };
  handlers = onPipe(pipe);
  pumpStream(Bun.stdin.stream(), () => handlers, activity).then(
    () => handlers?.closed("stdin closed"),
    (e) => handlers?.closed((e as Error).message),
  );
  return { address: "stdio:", close: () => pipe.close() };
}
