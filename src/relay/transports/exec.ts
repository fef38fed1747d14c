/** exec: the host spawns a process (wsl.exe, ssh, limactl shell ...) whose stdio is the pipe. */
import { EdgeportError } from "../../shared/errors.ts";
import type { Pipe, PipeHandlers } from "../mux/pipe.ts";
import { pumpStream, sinkWriter } from "./stream.ts";
import type { OnActivity, OnPipe } from "./types.ts";

export function spawnPipe(
  command: string,
  args: string[],
  description: string,
  onPipe: OnPipe,
  activity: OnActivity,
): void {
  let proc: Bun.Subprocess<"pipe", "pipe", "inherit">;
  try {
    proc = Bun.spawn([command, ...args], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  } catch (e) {
    throw new EdgeportError("E_DIAL", `cannot start ${description}: ${(e as Error).message}`, { cause: e });
  }
  let handlers: PipeHandlers | null = null;
  let ended = false;
  const end = (why?: string) => {
    if (ended) return;
    ended = true;
    handlers?.closed(why);
  };
  const pipe: Pipe = {
    description: `${description} (pid ${proc.pid})`,
    write: sinkWriter(proc.stdin, () => handlers?.drain()),
    close: () => {
      try {
        proc.stdin.end();
      } catch {
        // already closed
      }
      proc.kill();
    },
  };
  handlers = onPipe(pipe);
  pumpStream(proc.stdout, () => handlers, activity).then(
    () => end(`process exited${proc.exitCode !== null ? ` with code ${proc.exitCode}` : ""}`),
    (e) => end((e as Error).message),
  );
  proc.exited.then((code) => end(`process exited with code ${code}`));
}
