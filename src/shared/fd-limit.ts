/**
 * The process's file descriptor limit (RLIMIT_NOFILE) through libc's getrlimit/setrlimit (bun:ffi),
 * and how many descriptors are open. A relay holds one descriptor per client connection, and the
 * usual soft limit (1024, or 256 on macOS) is far below the hard one: at start the soft limit is
 * raised to the hard limit, as Go's runtime does for every Go program (capped on macOS, where
 * setrlimit refuses more than OPEN_MAX). Bun 1.4.5 already does the same at start (measured: a
 * process started with 64:1000 runs with 1000:1000); done here too so it holds whatever the runtime
 * does. Without a reachable libc, nothing changes and the limit reads as unknown.
 */
import { dlopen, FFIType } from "bun:ffi";
import { readdirSync } from "node:fs";
import { libcNames } from "./libc.ts";

export interface FdLimit {
  soft: number;
  hard: number;
  /** the soft limit before raiseFdLimit() raised it */
  raisedFrom?: number;
}

interface Libc {
  getrlimit(resource: number, rlim: unknown): number;
  setrlimit(resource: number, rlim: unknown): number;
}

const darwin = process.platform === "darwin";
const RLIMIT_NOFILE = darwin ? 8 : 7;
/** macOS: setrlimit refuses a soft limit above OPEN_MAX (Go caps it the same way) */
const DARWIN_OPEN_MAX = 10240n;

let libc: Libc | null | undefined;

function load(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== "linux" && !darwin) return libc;
  for (const name of libcNames()) {
    try {
      libc = dlopen(name, {
        getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
        setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
      }).symbols as unknown as Libc;
      return libc;
    } catch {
      // try the next name
    }
  }
  return libc;
}

/** RLIM_INFINITY and anything past 2^53 read as MAX_SAFE_INTEGER. */
const num = (v: bigint) => (v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v));

function read(l: Libc): BigUint64Array | null {
  const r = new BigUint64Array(2);
  return l.getrlimit(RLIMIT_NOFILE, r) === 0 ? r : null;
}

let known: FdLimit | null = null;

/** The soft and hard limit as last read (by raiseFdLimit or readFdLimit); null when unknown. */
export const fdLimit = (): FdLimit | null => known;

/** Reads the limit now; null without libc. */
export function readFdLimit(): FdLimit | null {
  const l = load();
  const r = l && read(l);
  if (!r) return null;
  known = {
    ...(known?.raisedFrom !== undefined ? { raisedFrom: known.raisedFrom } : {}),
    soft: num(r[0]!),
    hard: num(r[1]!),
  };
  return known;
}

/** Raises the soft limit to the hard one (once per process is enough); returns the limit now, null when unknown. */
export function raiseFdLimit(): FdLimit | null {
  const l = load();
  const r = l && read(l);
  if (!l || !r) return null;
  const [soft, hard] = [r[0]!, r[1]!];
  const wanted = darwin && hard > DARWIN_OPEN_MAX ? DARWIN_OPEN_MAX : hard;
  if (wanted > soft && l.setrlimit(RLIMIT_NOFILE, new BigUint64Array([wanted, hard])) === 0) {
    known = { soft: num(wanted), hard: num(hard), raisedFrom: num(soft) };
    return known;
  }
  known = { soft: num(soft), hard: num(hard) };
  return known;
}

/**
 * Open descriptors of this process (Linux /proc/self/fd, macOS /dev/fd); at the limit (listing needs
 * a descriptor too) the soft limit; null when they cannot be listed.
 */
export function openFdCount(): number | null {
  try {
    // the directory's own descriptor is listed too while it is read
    return readdirSync(darwin ? "/dev/fd" : "/proc/self/fd").length - 1;
  } catch (e) {
    const code = (e as { code?: string }).code;
    return code === "EMFILE" || code === "ENFILE" ? (known?.soft ?? readFdLimit()?.soft ?? null) : null;
  }
}

/** Whether the process is at its limit now (listing the open descriptors itself fails with EMFILE there). */
export function atFdLimit(): boolean {
  try {
    const open = readdirSync(darwin ? "/dev/fd" : "/proc/self/fd").length - 1;
    const soft = (known ?? readFdLimit())?.soft;
    return soft !== undefined && open >= soft - 1;
  } catch (e) {
    const code = (e as { code?: string }).code;
    return code === "EMFILE" || code === "ENFILE";
  }
}
