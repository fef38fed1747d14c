/**
 * Accepting at the file descriptor limit. When accept() fails with EMFILE, Bun's listener leaves
 * the connection in the queue and the listening socket stays readable: the event loop spins at a
 * full core, silently (measured with Bun 1.4.5). So accepting pauses a little before the limit:
 * every listener stops listening (clients waiting in the queue are reset, new ones refused, both
 * clean ends), one warning names the limit, the count is checked again with a growing backoff,
 * and once enough descriptors are free again the listeners listen again and a line says so.
 * Seen two ways: an accepted socket's descriptor number near the limit (the kernel gives the
 * lowest free one, so every number below it is in use), and a slow poll of the open count (for
 * descriptors taken by anything else).
 */
import type { ConsolaInstance } from "consola";
import { type FdLimit, fdLimit, openFdCount, readFdLimit } from "../shared/fd-limit.ts";
import type { FdState } from "./port-rows.ts";

/** A listener that can stop and start accepting. */
export interface Pausable {
  pause(): void;
  /** false when it could not listen again (tried again at the next check) */
  resume(): boolean;
}

export interface FdGuard {
  /** returns the unregister function */
  register(l: Pausable): () => void;
  /** each accepted socket's descriptor (undefined where there is none, e.g. Windows) */
  accepted(fd: number | undefined): void;
  state(): FdState | undefined;
}

export interface FdGuardOptions {
  log: ConsolaInstance;
  limit?: () => FdLimit | null;
  count?: () => number | null;
  /** backoff between checks while paused */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** how often the open count is polled while listeners exist */
  pollMs?: number;
}

/** Descriptors kept free for the pipe, the API and in-flight work: 1/16 of the limit, 8 to 64. */
export const reserveOf = (limit: number): number => Math.max(8, Math.min(64, Math.floor(limit / 16)));

export function createFdGuard(o: FdGuardOptions): FdGuard {
  const limitOf = o.limit ?? (() => fdLimit() ?? readFdLimit());
  const count = o.count ?? openFdCount;
  const minMs = o.minBackoffMs ?? 50;
  const maxMs = o.maxBackoffMs ?? 2000;
  const listeners = new Set<Pausable>();
  const stalled = new Set<Pausable>();
  let paused: { since: number; delay: number; timer: ReturnType<typeof setTimeout> } | null = null;
  let poll: ReturnType<typeof setInterval> | null = null;

  function exhaust(open: number | null, limit: FdLimit): void {
    if (paused) return;
    const hard =
      limit.hard > limit.soft
        ? `; the hard limit is ${limit.hard}: raise the soft one with ulimit -n`
        : "; raise it with ulimit -Hn, or LimitNOFILE= in a systemd unit";
    o.log.warn(
      `out of file descriptors: ${open ?? "?"} open of the limit ${limit.soft} (RLIMIT_NOFILE${hard}); ` +
        "accepting is paused until connections close",
    );
    for (const listener of listeners) {
      listener.pause();
      stalled.add(listener);
    }
    paused = { since: Date.now(), delay: minMs, timer: setTimeout(check, minMs) };
  }

  function check(): void {
    if (!paused) return;
    const limit = limitOf();
    const open = count();
    if (limit && (open === null || open >= limit.soft - 2 * reserveOf(limit.soft))) return backoff();
    for (const listener of [...stalled]) if (listener.resume()) stalled.delete(listener);
    if (stalled.size > 0) return backoff();
    const secs = ((Date.now() - paused.since) / 1000).toFixed(1);
    paused = null;
    o.log.info(`file descriptors available again (${open} open of ${limit?.soft}): accepting resumed after ${secs} s`);
  }

  function backoff(): void {
    if (!paused) return;
    paused.delay = Math.min(maxMs, paused.delay * 2);
    paused.timer = setTimeout(check, paused.delay);
  }

  function near(n: number | null): void {
    const limit = limitOf();
    if (limit && n !== null && n >= limit.soft - reserveOf(limit.soft)) exhaust(count(), limit);
  }

  return {
    register(l) {
      listeners.add(l);
      if (paused) {
        l.pause();
        stalled.add(l);
      }
      if (!poll) {
        poll = setInterval(() => near(count()), o.pollMs ?? 1000);
        poll.unref?.();
      }
      return () => {
        listeners.delete(l);
        stalled.delete(l);
        if (listeners.size > 0) return;
        if (poll) clearInterval(poll);
        poll = null;
        if (paused) clearTimeout(paused.timer);
        paused = null;
      };
    },
    accepted(fd) {
      if (fd !== undefined && !paused) near(fd);
    },
    state() {
      const limit = limitOf();
      if (!limit) return undefined;
      const open = count();
      return { limit: limit.soft, hardLimit: limit.hard, ...(open !== null ? { open } : {}), exhausted: !!paused };
    },
  };
}

let processGuard: FdGuard | undefined;

/** The one guard of this process (descriptors are a per-process limit). */
export const processFdGuard = (log: ConsolaInstance): FdGuard => {
  processGuard ??= createFdGuard({ log });
  return processGuard;
};
