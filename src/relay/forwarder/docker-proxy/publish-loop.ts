/**
 * The docker-proxy's lifetime on the host side: publish through the control channel, tell dockerd
 * the outcome of the first attempt, then hold the lease until the stop signal. When the channel
 * closes (the pipe broke, the host restarted) it publishes again, with a backoff; a first attempt
 * that fails is final, so `docker run` reports it.
 */
import type { ControlLease } from "./control-client.ts";
import type { StatusPipe } from "./status-pipe.ts";

export interface PublishLoopOptions {
  /** one attempt: a new control channel and its reply (rejects when the socket cannot be reached) */
  request: () => Promise<ControlLease>;
  status: StatusPipe;
  signal: AbortSignal;
  /** a consola instance, or anything with these three */
  log: Record<"info" | "warn" | "error", (msg: string) => void>;
  /** the binding, for messages: "0.0.0.0:8080 -> 172.17.0.2:80/tcp" */
  what: string;
  /** the control socket's URL, for messages */
  control: string;
  /** retry backoff: first delay, doubled up to max (ms) */
  backoff?: { firstMs: number; maxMs: number };
  /** how long to wait for the host to close the channel after we end it at stop (ms) */
  releaseWaitMs?: number;
}

/** Resolves after `ms`, or at once when the signal aborts. */
const pause = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });

/** Resolves "closed" when the lease's channel closes, "stop" when the signal aborts first. */
const heldUntil = (lease: ControlLease, signal: AbortSignal): Promise<"closed" | "stop"> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve("stop");
    const onAbort = () => resolve("stop");
    signal.addEventListener("abort", onAbort, { once: true });
    void lease.closed.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve("closed");
    });
  });

/** Resolves with `p`, or after `ms` at the latest. */
const within = (p: Promise<void>, ms: number): Promise<void> => {
  let t: Timer | undefined;
  return Promise.race([
    p,
    new Promise<void>((r) => {
      t = setTimeout(r, ms);
    }),
  ]).finally(() => clearTimeout(t));
};

/** Publishes and holds the lease until the signal aborts: the exit code (0, or 1 when the first attempt failed). */
export async function holdPublished(o: PublishLoopOptions): Promise<number> {
  const { firstMs, maxMs } = o.backoff ?? { firstMs: 100, maxMs: 2000 };
  let first = true;
  let delay = firstMs;
  /** A failed attempt: final (true) when it was the first, else a warning and a backoff wait. */
  const isFinal = async (msg: string): Promise<boolean> => {
    if (first) {
      o.status.failed(msg);
      o.log.error(msg);
      return true;
    }
    o.log.warn(`${msg}; retrying`);
    await pause(delay, o.signal);
    delay = Math.min(delay * 2, maxMs);
    return false;
  };
  while (!o.signal.aborted) {
    let lease: ControlLease;
    try {
      lease = await o.request();
    } catch (e) {
      const why = (e as { code?: string }).code ?? (e as Error).message;
      if (await isFinal(`${o.what}: cannot reach the host through ${o.control}: ${why}`)) return 1;
      continue;
    }
    if (!lease.reply.ok) {
      lease.end();
      if (await isFinal(`${o.what}: the host refused: ${lease.reply.error || "no reason"}`)) return 1;
      continue;
    }
    o.log.info(`${o.what}: published on the host at ${(lease.reply.ports ?? []).join(", ")} (${lease.reply.id})`);
    if (first) o.status.ready();
    first = false;
    delay = firstMs;
    if ((await heldUntil(lease, o.signal)) === "stop") {
      lease.end(); // the host releases the port when the channel ends
      await within(lease.closed, o.releaseWaitMs ?? 2000);
      o.log.info(`${o.what}: unpublished`);
      return 0;
    }
    o.log.warn(`${o.what}: the control channel to the host closed (pipe down?); publishing again`);
  }
  return 0;
}
