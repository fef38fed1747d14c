/**
 * dockerd's status pipe: dockerd starts its userland proxy with a pipe on fd 3 and reads "0\n" once
 * the port is published, or "1\n<error>" when it is not (the error `docker run` shows). One word,
 * then the pipe is closed; when the proxy is run by hand there is no fd 3 and nothing is written.
 */
import { closeSync, writeSync } from "node:fs";

/** the fd dockerd passes the status pipe on */
export const STATUS_FD = 3;

export interface StatusPipe {
  /** the port is published: "0\n" */
  ready(): void;
  /** it is not, and why: "1\n<reason>" */
  failed(reason: string): void;
}

/** The status pipe on `fd`; only the first report is written, later ones are ignored. */
export function statusPipe(fd = STATUS_FD): StatusPipe {
  let told = false;
  const tell = (text: string) => {
    if (told) return;
    told = true;
    try {
      writeSync(fd, text);
      closeSync(fd);
    } catch {
      // not started by dockerd
    }
  };
  return { ready: () => tell("0\n"), failed: (reason) => tell(`1\n${reason}`) };
}
