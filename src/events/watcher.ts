/**
 * Follows the engine: at start and after every reconnect it subscribes to /events first, then
 * lists and inspects the running containers (so nothing falls in a gap), then applies events
 * as they come; a periodic resync catches anything missed (host sleep). When the engine is
 * unreachable it keeps its last view, retries with capped backoff and logs the change once.
 */
import type { ConsolaInstance } from "consola";
import { type ContainerView, createContainerView } from "./container-view.ts";
import type { Engine } from "./engine.ts";
import type { ContainerInspect, EngineEvent } from "./schemas.ts";

export interface WatcherOptions {
  engine: Engine;
  log: ConsolaInstance;
  resyncMs: number;
  /** the running containers changed; `full` after a complete list (a resync) */
  onChange: (containers: ReadonlyMap<string, ContainerInspect>, full: boolean) => void;
  /** true when this container's ports are not visible yet (inspect again with backoff) */
  isPending: (c: ContainerInspect) => boolean;
  backoffMaxMs?: number;
}

export interface Watcher {
  readonly containers: ReadonlyMap<string, ContainerInspect>;
  readonly connected: boolean;
  /** runs until the signal aborts */
  run(signal: AbortSignal): Promise<void>;
}

/**
 * "engine URL unreachable: cause", once: the engine's own errors already name it (and where its URL
 * came from), the watcher's (the event stream ended) do not.
 */
function unreachable(url: string, msg: string): string {
  const own = /^engine (\S+(?: \(from [^)]*\))?)(?: unreachable)?: (.*)$/s.exec(msg);
  return own && own[1]!.startsWith(url)
    ? `engine ${own[1]} unreachable: ${own[2]}`
    : `engine ${url} unreachable: ${msg}`;
}

/** Waits ms, or less when the signal aborts first. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        r();
      },
      { once: true },
    );
  });
}

/**
 * One connection to the engine: subscribe to /events first, then list and inspect (events that
 * arrive meanwhile wait in a queue), then apply events as they come until the stream ends.
 */
async function followOnce(
  o: WatcherOptions,
  view: ContainerView,
  signal: AbortSignal,
  since: { value?: string },
  setConnected: (up: boolean) => void,
): Promise<void> {
  const { engine } = o;
  const { apiVersion, engineVersion } = await engine.negotiate();
  const stream = new AbortController();
  const stop = () => stream.abort();
  signal.addEventListener("abort", stop, { once: true });
  let queue: EngineEvent[] | null = [];
  const { promise: opened, resolve: open } = Promise.withResolvers<void>();
  const events = engine.events({
    since: since.value,
    signal: stream.signal,
    onOpen: open,
    onEvent: (e) => {
      if (e.time) since.value = String(e.time);
      if (queue) queue.push(e);
      else view.onEvent(e);
    },
  });
  const timer = setInterval(() => {
    view.fullSync().catch((e: Error) => {
      o.log.debug(`resync failed: ${e.message}`);
      stream.abort();
    });
  }, o.resyncMs);
  try {
    await Promise.race([opened, events]);
    await view.fullSync();
    for (const e of queue!) view.onEvent(e);
    queue = null;
    setConnected(true);
    o.log.info(
      `following engine ${engine.url} (engine ${engineVersion ?? "?"}, API ${apiVersion}): ${view.containers.size} running container(s)`,
    );
    await events;
    if (!signal.aborted) throw new Error("the event stream ended");
  } finally {
    clearInterval(timer);
    signal.removeEventListener("abort", stop);
    stream.abort();
    setConnected(false);
  }
}

export function createWatcher(o: WatcherOptions): Watcher {
  const { engine, log } = o;
  const view = createContainerView(o);
  let connected = false;
  /** the last session got as far as following events: a later failure starts a new outage */
  let wasUp = false;
  const maxDelay = o.backoffMaxMs ?? 5000;

  return {
    containers: view.containers,
    get connected() {
      return connected;
    },
    async run(signal) {
      const since: { value?: string } = {};
      let delay = 100;
      let failures = 0;
      let lastError = "";
      const setConnected = (up: boolean) => {
        connected = up;
        wasUp ||= up;
      };
      while (!signal.aborted) {
        try {
          await followOnce(o, view, signal, since, setConnected);
        } catch (e) {
          if (signal.aborted) break;
          const msg = (e as Error).message;
          if (wasUp) {
            wasUp = false;
            failures = 0;
            delay = 100;
          }
          failures++;
          if (failures === 1) {
            log.warn(
              `${unreachable(engine.url, msg)}; keeping what is published, retrying with backoff up to ${maxDelay / 1000} s`,
            );
          } else if (msg !== lastError) log.debug(`engine still unreachable: ${msg}`);
          lastError = msg;
          await pause(delay, signal);
          delay = Math.min(maxDelay, delay * 2);
        }
      }
    },
  };
}
