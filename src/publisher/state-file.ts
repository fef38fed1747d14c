/**
 * The daemon's state file: the ad-hoc specs published through its API, so they survive a restart
 * (issue 20, item 3). One small JSON file in the daemon's state directory, validated with zod when
 * read, and written atomically: a temp file in the same directory (O_EXCL, O_NOFOLLOW, mode 0600),
 * fsync'ed, renamed over the old one, then the directory fsync'ed. A reader sees the old file or the
 * new one, never part of one.
 *
 * The directory follows the control socket's rules (src/shared/control-socket.ts): made 0700, it
 * must belong to the daemon's uid and be owner-only; a symlinked default directory, another uid's
 * directory or one group/other may enter is refused, never chmod'ed. A state file that is a
 * symlink, not a regular file, another uid's or writable by others is refused too (the daemon does
 * not start). A file that is ours but corrupt (not JSON, the wrong shape, over MAX_STATE_BYTES) is
 * an error in the log naming the file and the problem; it is renamed aside to `<file>.bad-<time>`
 * and the daemon starts with nothing restored.
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import { EdgeportError, errnoOf } from "../shared/errors.ts";

export const MAX_STATE_BYTES = 1024 * 1024;

export const PersistedPort = z.strictObject({
  spec: z.string().min(1).max(400),
  proxyProtocol: z.boolean().optional(),
});
export type PersistedPort = z.infer<typeof PersistedPort>;

export const StateFile = z.strictObject({
  version: z.literal(1),
  /** the control API the specs were published through (for a reader; not checked) */
  api: z.string().max(2000).optional(),
  ports: z.array(PersistedPort).max(10_000),
});
export type StateFile = z.infer<typeof StateFile>;

type Env = Readonly<Record<string, string | undefined>>;

/** Where the daemon keeps its state when --state-dir and the config say nothing. */
export function defaultStateDir(env: Env, uid: number, platform: string, home: string): string {
  if (platform === "win32") return join(env.LOCALAPPDATA ?? join(home, "AppData", "Local"), "edgeport");
  if (platform === "darwin")
    return uid === 0
      ? "/Library/Application Support/edgeport"
      : join(home, "Library", "Application Support", "edgeport");
  if (uid === 0) return "/var/lib/edgeport";
  return join(env.XDG_STATE_HOME || join(home, ".local", "state"), "edgeport");
}

/**
 * The state file of a daemon: `ports.json` for the default control API, else one named by a hash
 * of the API's URL, so two daemons (each with its own --api) never share, or overwrite, a file.
 */
export function stateFileName(api: string, defaultApi: string): string {
  if (api === defaultApi) return "ports.json";
  return `ports-${new Bun.CryptoHasher("sha256").update(api).digest("hex").slice(0, 12)}.json`;
}

const refuse = (msg: string) => new EdgeportError("E_PERMISSION", msg);
const mode = (st: Stats) => `0${(st.mode & 0o777).toString(8)}`;

/**
 * Makes (or accepts) the state directory. The default one is lstat'ed (a symlink is refused); a
 * directory named with --state-dir may be reached through a symlink. Either must belong to `uid`
 * and be owner-only. No owner or mode checks on Windows (%LOCALAPPDATA% is the user's by ACL).
 */
export function ensureStateDir(path: string, uid: number, platform: string, named: boolean): void {
  const flag = named ? "--state-dir" : "the state directory";
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (e) {
    if (errnoOf(e) !== "EEXIST")
      throw refuse(`${flag} ${path}: cannot create it: ${errnoOf(e) ?? (e as Error).message}`);
  }
  if (platform === "win32") return;
  const st = named ? statSync(path) : lstatSync(path);
  const redo = `remove it (sudo rm -r ${path}) and start edgeport again, or name another with --state-dir`;
  if (st.isSymbolicLink())
    throw refuse(
      `${flag} ${path} is a symbolic link, not the directory edgeport makes (another user may have planted it): ${redo}`,
    );
  if (!st.isDirectory()) throw refuse(`${flag} ${path} is not a directory: ${redo}`);
  if (st.uid !== uid)
    throw refuse(
      `${flag} ${path} belongs to uid ${st.uid}, not to uid ${uid} that runs edgeport: another user could change which ports are published; ${redo}`,
    );
  if (st.mode & 0o077)
    throw refuse(
      `${flag} ${path} is open to group or others (mode ${mode(st)}); it must be owner-only: chmod 700 ${path}`,
    );
}

/** What reading the state file gave: the specs, or why none (the bad file kept aside). */
export type ReadResult = { ports: PersistedPort[] } | { ports: []; problem: string; keptAs: string };

function checkFile(path: string, st: Stats, uid: number, platform: string): void {
  if (!st.isFile()) throw refuse(`state file ${path} is not a regular file; remove it and start edgeport again`);
  if (platform === "win32") return;
  if (st.uid !== uid)
    throw refuse(`state file ${path} belongs to uid ${st.uid}, not to uid ${uid} that runs edgeport; remove it`);
  if (st.mode & 0o022) throw refuse(`state file ${path} is writable by group or others (mode ${mode(st)}); remove it`);
}

/** The file's bytes, at most MAX_STATE_BYTES + 1; opened without following a symlink. */
function readBounded(path: string, uid: number, platform: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return null;
    if (errnoOf(e) === "ELOOP") throw refuse(`state file ${path} is a symbolic link; remove it`);
    throw refuse(`state file ${path}: cannot open it: ${errnoOf(e) ?? (e as Error).message}`);
  }
  try {
    checkFile(path, fstatSync(fd), uid, platform);
    const buf = Buffer.alloc(MAX_STATE_BYTES + 1);
    let n = 0;
    for (let got = 1; got > 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function problemOf(bytes: Buffer): { problem: string } | { data: StateFile } {
  if (bytes.length > MAX_STATE_BYTES) return { problem: `it is over ${MAX_STATE_BYTES} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    return { problem: `it is not valid JSON (${(e as Error).message})` };
  }
  const r = StateFile.safeParse(json);
  if (r.success) return { data: r.data };
  const issues = r.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`);
  return { problem: `it is not an edgeport state file (${issues.join("; ")})` };
}

/**
 * Reads the state file. Missing: nothing to restore. Hostile (see above): throws E_PERMISSION.
 * Corrupt: renamed aside to `<path>.bad-<now>`, and the problem returned.
 */
export function readStateFile(path: string, uid: number, platform: string, now = Date.now()): ReadResult {
  const bytes = readBounded(path, uid, platform);
  if (bytes === null) return { ports: [] };
  const r = problemOf(bytes);
  if ("data" in r) return { ports: r.data.ports };
  const keptAs = `${path}.bad-${new Date(now).toISOString().replace(/[:.]/g, "-")}`;
  renameSync(path, keptAs);
  return { ports: [], problem: r.problem, keptAs };
}

/** Temp files a crashed writer left behind (never read: the rename did not happen). */
export function removeStaleTemps(path: string): void {
  const prefix = `${basename(path)}.tmp-`;
  for (const f of readdirSync(dirname(path))) if (f.startsWith(prefix)) unlinkSync(join(dirname(path), f));
}

/** Writes the state file atomically (see above); an empty list removes it. Throws on failure. */
export function writeStateFile(path: string, data: StateFile, platform: string): void {
  if (data.ports.length === 0) {
    try {
      unlinkSync(path);
    } catch (e) {
      if (errnoOf(e) !== "ENOENT") throw e;
    }
    return;
  }
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);
  const fd = openSync(tmp, flags, 0o600);
  let open = true;
  try {
    const bytes = Buffer.from(`${JSON.stringify(data, null, 2)}\n`);
    for (let n = 0; n < bytes.length; ) n += writeSync(fd, bytes, n, bytes.length - n);
    fsyncSync(fd);
    closeSync(fd);
    open = false;
    renameSync(tmp, path);
  } catch (e) {
    if (open) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {}
    throw e;
  }
  if (platform === "win32") return;
  const dir = openSync(dirname(path), constants.O_RDONLY);
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
