/**
 * Where the control socket lives, and the checks that keep another local user from standing in
 * for it (issue 16, defect 3). The default directory is edgeport's own: root's is /run/edgeport, a
 * user's is $XDG_RUNTIME_DIR/edgeport, else /tmp/edgeport-UID (a predictable name in a
 * world-writable directory, so it is trusted only when this uid made it and nobody else can enter
 * it). A directory named with --api is the user's choice: only its owner is checked.
 */
import { existsSync, lstatSync, mkdirSync, type Stats, statSync } from "node:fs";
import { dirname } from "node:path";
import { EdgeportError, errnoOf } from "./errors.ts";

type Env = Readonly<Record<string, string | undefined>>;

/** The directory edgeport keeps its control socket in when --api and EDGEPORT_API say nothing. */
export function defaultControlDir(env: Env, uid: number, platform: string): string {
  if (uid === 0) return platform === "linux" ? "/run/edgeport" : "/var/run/edgeport";
  return env.XDG_RUNTIME_DIR ? `${env.XDG_RUNTIME_DIR}/edgeport` : `/tmp/edgeport-${uid}`;
}

/**
 * The default socket. Root's is api.sock: /run/edgeport/control.sock is the VM forwarder's
 * docker-proxy socket (--control-listen), and the test bed runs both ends on one file system.
 */
export const defaultControlPath = (env: Env, uid: number, platform: string): string =>
  `${defaultControlDir(env, uid, platform)}/${uid === 0 ? "api.sock" : "control.sock"}`;

/** The control API's default address: a per-user unix socket, or an owner-only named pipe on Windows. */
export function defaultApiUrl(env: Env, uid: number, platform: string): string {
  if (env.EDGEPORT_API) return env.EDGEPORT_API;
  return platform === "win32"
    ? "npipe:////./pipe/edgeport-control"
    : `unix://${defaultControlPath(env, uid, platform)}`;
}

const mode = (st: Stats) => `0${(st.mode & 0o777).toString(8)}`;
const refuse = (msg: string) => new EdgeportError("E_PERMISSION", msg);

/**
 * Makes (or accepts) edgeport's own socket directory: created with mkdir 0700, then lstat'ed; a
 * symlink, another uid's directory or one group/other may enter is refused, never chmod'ed.
 */
export function ensurePrivateDir(path: string, uid: number): void {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (e) {
    if (errnoOf(e) !== "EEXIST")
      throw refuse(`cannot create the control socket's directory ${path}: ${errnoOf(e) ?? (e as Error).message}`);
  }
  const st = lstatSync(path);
  const redo = `remove it (sudo rm -r ${path}) and start edgeport again, or name a socket with --api unix:///PATH`;
  if (st.isSymbolicLink())
    throw refuse(
      `${path} is a symbolic link, not the directory edgeport makes for its control socket (another user may have planted it): ${redo}`,
    );
  if (!st.isDirectory()) throw refuse(`${path} is not a directory: ${redo}`);
  if (st.uid !== uid)
    throw refuse(
      `${path} belongs to uid ${st.uid}, not to uid ${uid} that runs edgeport: another user made it first and could take the control socket's requests; ${redo}`,
    );
  if (st.mode & 0o077)
    throw refuse(
      `${path} is open to group or others (mode ${mode(st)}); the control socket's directory must be owner-only: chmod 700 ${path}`,
    );
}

/** A directory named with --api: made 0700 when missing; it must belong to this uid or root. */
export function ensureNamedDir(path: string, uid: number): void {
  if (!existsSync(path)) mkdirSync(path, { recursive: true, mode: 0o700 });
  const st = statSync(path);
  if (!st.isDirectory()) throw refuse(`--api: ${path} is not a directory`);
  if (st.uid !== uid && st.uid !== 0)
    throw refuse(
      `--api: ${path} belongs to uid ${st.uid}, not to uid ${uid} that runs edgeport or root; put the socket in a directory of your own`,
    );
}

/**
 * The CLI's check before it sends a request: the socket and its directory belong to this uid or
 * root, so no other local user's process (a fake daemon) receives it. A missing socket passes
 * (the connection then fails with "no daemon answers").
 */
export function checkDaemonSocket(path: string, uid: number): void {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  const ours = (owner: number) => owner === uid || owner === 0;
  if (!st.isSocket()) throw refuse(`${path} is not a socket; no edgeport daemon listens there`);
  const dir = dirname(path);
  const dst = statSync(dir);
  const owner = !ours(st.uid) ? { what: path, by: st.uid } : !ours(dst.uid) ? { what: dir, by: dst.uid } : null;
  if (owner)
    throw refuse(
      `refusing to send a request to ${path}: ${owner.what} belongs to uid ${owner.by}, neither you (uid ${uid}) nor root, so another user's process may be posing as the daemon; remove it (sudo rm -r ${owner.what}) or point --api at your daemon's socket`,
    );
}
