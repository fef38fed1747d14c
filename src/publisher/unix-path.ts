/**
 * The host end of a socket forward is a file anyone who can open it uses with the VM side's rights
 * (a forward of the engine's socket is root in the VM), so it is made with care: only in a
 * directory that belongs to this uid and that no group or other user may write (so nobody else can
 * put or swap a file there), owner-only from the first instant (umask 077 around listen), a stale
 * socket file with nobody behind it replaced, a live one refused by name, and removed on close only
 * while it is still the file this process made.
 */
import { lstatSync, type Stats, statSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { SocketHandler, UnixSocketListener } from "bun";
import { EdgeportError, errnoOf } from "../shared/errors.ts";

const mode = (st: Stats) => `0${(st.mode & 0o777).toString(8)}`;
const bad = (msg: string) => new EdgeportError("E_BAD_SPEC", msg);

/** The directory of a host socket: exists, is this uid's, and neither group nor others may write it. */
export function checkSocketDir(path: string, uid: number): void {
  const dir = dirname(path);
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    throw bad(
      `${path}: its directory ${dir} cannot be used (${errnoOf(e) ?? (e as Error).message}); create it: mkdir -m 700 ${dir}`,
    );
  }
  if (!st.isDirectory()) throw bad(`${path}: ${dir} is not a directory`);
  if (st.uid !== uid)
    throw bad(
      `${path}: its directory ${dir} belongs to uid ${st.uid}, not to uid ${uid} that runs edgeport; another user could replace the socket: put it in a directory of your own`,
    );
  if (st.mode & 0o022)
    throw bad(
      `${path}: its directory ${dir} is writable by group or others (mode ${mode(st)}); another user could replace the socket: chmod go-w ${dir}, or put it in a directory of your own`,
    );
}

/** Whether something accepts connections on the socket file at path. */
async function answers(path: string): Promise<boolean> {
  try {
    const s = await Bun.connect({ unix: path, socket: { data() {} } });
    s.terminate();
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes room for the socket: nothing there is fine; a socket nobody answers on is stale and
 * removed; a live socket is E_PORT_IN_USE naming it; anything else (a file, a symlink) is refused.
 */
export async function clearStaleSocket(path: string): Promise<void> {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw bad(`${path} exists and is not a socket; refusing to replace it`);
  if (await answers(path))
    throw new EdgeportError(
      "E_PORT_IN_USE",
      `${path} is a live socket: another process accepts connections on it; stop it, or choose another path`,
    );
  try {
    unlinkSync(path);
  } catch (e) {
    if (errnoOf(e) !== "ENOENT") throw bad(`cannot remove the stale socket ${path}: ${errnoOf(e) ?? e}`);
  }
}

/** Listens on path with umask 077, so the socket is owner-only from the moment it exists. Returns its inode. */
export function listenOwnerOnly<T>(
  path: string,
  socket: SocketHandler<T>,
): { listener: UnixSocketListener<T>; ino: number | null } {
  const old = process.umask(0o077);
  let listener: UnixSocketListener<T>;
  try {
    listener = Bun.listen<T>({ unix: path, allowHalfOpen: true, socket } as Parameters<typeof Bun.listen<T>>[0]);
  } catch (e) {
    const code = errnoOf(e);
    throw new EdgeportError(
      code === "EADDRINUSE" ? "E_PORT_IN_USE" : code === "EACCES" ? "E_PERMISSION" : "E_BAD_SPEC",
      `cannot listen on ${path}: ${code ?? (e as Error).message}`,
      { cause: e },
    );
  } finally {
    process.umask(old);
  }
  let ino: number | null = null;
  try {
    ino = lstatSync(path).ino;
  } catch {}
  return { listener, ino };
}

/** Removes the socket file if it is still the one this process made (same inode). */
export function removeOwnSocket(path: string, ino: number | null): void {
  try {
    if (ino !== null && lstatSync(path).ino === ino) unlinkSync(path);
  } catch {}
}
