/** What only unix-socket pipes need: a safe socket path, and kernel buffers larger than one frame. */
import { existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { EdgeportError } from "../../shared/errors.ts";
import { log } from "../../shared/log.ts";
import { growSocketBuffers, PIPE_SOCKET_BUFFER, pipeBufferSetting } from "./sockbuf.ts";

/** Prepares a unix socket path: a 0700 parent directory, no stale socket file. */
export function prepareUnixPath(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket())
      throw new EdgeportError("E_BAD_URL", `${path} exists and is not a socket; refusing to replace it`);
    unlinkSync(path);
  }
}

let pipeBufferBytes: number | null = null;
let toldBuffers = false;

/** EDGEPORT_PIPE_BUFFER, read once, when the first pipe connects (the log is configured by then). */
function pipeBuffer(): number {
  if (pipeBufferBytes === null) {
    try {
      pipeBufferBytes = pipeBufferSetting();
    } catch (e) {
      log.warn(`${(e as Error).message}; using ${PIPE_SOCKET_BUFFER}`);
      pipeBufferBytes = PIPE_SOCKET_BUFFER;
    }
  }
  return pipeBufferBytes;
}

/** A unix-socket pipe gets buffers larger than one frame (sockbuf.ts says why). */
export function tuneUnixPipe(fd: number | undefined, description: string): void {
  const want = pipeBuffer();
  if (want <= 0 || process.platform === "win32") return;
  const got = growSocketBuffers(fd, want);
  if (!got) {
    if (!toldBuffers)
      log.info(
        `pipe ${description}: the socket buffers could not be set (no libc reachable through bun:ffi); the kernel's defaults cost throughput`,
      );
    toldBuffers = true;
    return;
  }
  log.debug(
    `pipe ${description}: socket buffers ${got.send} bytes send, ${got.receive} receive (as the kernel counts them)`,
  );
  // Linux reports twice what it granted; a grant below the ask was capped by net.core.wmem_max
  if (got.send >= 0 && got.send < want && !toldBuffers) {
    toldBuffers = true;
    log.info(
      `pipe ${description}: the kernel capped the socket send buffer at ${got.send} bytes (asked ${want}); ` +
        `as root, or with net.core.wmem_max raised to ${want}, the pipe is faster (docs/performance.md)`,
    );
  }
}
