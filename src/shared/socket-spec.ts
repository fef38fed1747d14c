/**
 * The socket-forward SPEC: `unix:///HOST_PATH:unix:///VM_PATH` (host side `npipe:////./pipe/NAME`
 * on Windows). The host listens on HOST_PATH; each connection becomes a channel to VM_PATH, dialled
 * by the forwarder. A socket forward is a mapping of proto "unix" whose addresses are the two
 * paths (hostIp: the host's path or pipe name, targetIp: the VM's path) and whose ports are 0.
 * Pure: the host directory's owner and mode are checked where the socket is made (unix-path.ts).
 */
import { EdgeportError } from "./errors.ts";

/** sun_path holds 108 bytes on Linux (104 on macOS and the BSDs), the terminating NUL included. */
export const SUN_PATH_BYTES = 108;

const UNIX = "unix://";
const NPIPE = "npipe://";

/** Whether a spec is meant as a socket forward: either side names a socket (then both must). */
export const isSocketSpec = (spec: string): boolean => spec.includes(UNIX) || spec.includes(NPIPE);

export interface SocketForward {
  /** a unix path, or a named pipe as Windows writes it (`\\.\pipe\NAME`) */
  hostPath: string;
  vmPath: string;
}

/** `npipe:////./pipe/NAME` is the pipe `\\.\pipe\NAME`; a unix path is written as it is. */
export const socketUrl = (path: string): string =>
  path.startsWith("\\\\") ? `${NPIPE}${path.replace(/\\/g, "/")}` : `${UNIX}${path}`;

/** Parses a socket-forward SPEC. Throws EdgeportError E_BAD_SPEC naming the part that is wrong. */
export function parseSocketSpec(spec: string): SocketForward {
  const fail = (why: string): never => {
    throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": ${why}`);
  };
  const shape = `a socket forward is ${UNIX}/HOST_PATH:${UNIX}/VM_PATH`;
  if (!spec.startsWith(UNIX) && !spec.startsWith(NPIPE)) {
    const host = spec.slice(0, spec.search(/(unix|npipe):\/\//)).replace(/:$/, "");
    fail(`the host side "${host}" is a port but the target is a socket; ${shape}`);
  }
  const sep = spec.lastIndexOf(`:${UNIX}`);
  if (sep <= 0) {
    const target = spec.slice(spec.indexOf(":", spec.indexOf("//") + 2) + 1);
    fail(
      target === "" || !spec.includes(":", spec.indexOf("//") + 2)
        ? `the target is missing; ${shape}`
        : `the host side is a socket but the target "${target}" is not; ${shape}`,
    );
  }
  const hostText = spec.slice(0, sep);
  const vmPath = spec.slice(sep + 1 + UNIX.length);
  if (hostText.slice(hostText.indexOf("//") + 2).includes(UNIX)) fail(`more than one ":${UNIX}"; ${shape}`);
  const hostPath = hostText.startsWith(NPIPE) ? pipeName(hostText, fail) : hostText.slice(UNIX.length);
  if (!hostText.startsWith(NPIPE)) checkPath(hostPath, "host path", fail);
  checkPath(vmPath, "VM path", fail);
  return { hostPath, vmPath };
}

function checkPath(path: string, what: string, fail: (why: string) => never): void {
  if (path === "") fail(`the ${what} is empty`);
  if (!path.startsWith("/"))
    fail(`the ${what} "${path}" is relative; write an absolute path (${UNIX}/dir/name.sock, three slashes)`);
  if (path.endsWith("/")) fail(`the ${what} "${path}" names a directory, not a socket`);
  if (path.split("/").some((p) => p === "." || p === ".."))
    fail(`the ${what} "${path}" has "." or ".." in it; write the path without them`);
  if (path.includes("\0")) fail(`the ${what} has a NUL byte in it`);
  const bytes = Buffer.byteLength(path);
  if (bytes + 1 > SUN_PATH_BYTES)
    fail(
      `the ${what} "${path}" is ${bytes} bytes, too long for a unix socket (at most ${SUN_PATH_BYTES - 1}); choose a shorter path`,
    );
}

/** `npipe:////./pipe/NAME` (or with `\`) to `\\.\pipe\NAME`. */
function pipeName(text: string, fail: (why: string) => never): string {
  const raw = text.slice(NPIPE.length).replace(/\\/g, "/");
  const m = /^\/\/\.\/pipe\/([^/]+)$/.exec(raw);
  if (!m) return fail(`the host pipe "${text}" is not ${NPIPE}//./pipe/NAME`);
  return `\\\\.\\pipe\\${m[1]}`;
}
