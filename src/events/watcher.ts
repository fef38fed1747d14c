/**
 * Follows the engine: at start and after every reconnect it subscribes to /events first, then
 * lists and inspects the running containers (so nothing falls in a gap), then applies events
 * as they come; a periodic resync catches anything missed (host sleep). When the engine is
 * unreachable it keeps its last view, retries with capped backoff and logs the change once.
 */
import type { ConsolaInstance } from "consola";
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

const GONE = new Set(["die", "stop", "destroy", "oom"]);
const LOOK = new Set(["start", "unpause", "restart", "rename", "update", "kill", "health_status"]);
const PENDING_RETRIES = [25, 50, 100, 200, 400, 800, 1600];

export function createWatcher(o: WatcherOptions): Watcher {
  const { engine, log } = o;
  const containers = new Map<string, ContainerInspect>();
  /** bumped by every event about a container: a late inspect never undoes a newer event */
  const seq = new Map<string, number>();
  let connected = false;
  /** the last session got as far as following events: a later failure starts a new outage */
  let wasUp = false;
  let notifyQueued = false;
  let fullPending = false;

  function notify(full = false): void {
    fullPending ||= full;
    if (notifyQueued) return;
    notifyQueued = true;
    queueMicrotask(() => {
      notifyQueued = false;
      const f = fullPending;
      fullPending = false;
      o.onChange(containers, f);
    });
  }

  function apply(id: string, c: ContainerInspect | null): void {
    if (c?.State.Running) containers.set(id, c);
    else if (!containers.delete(id)) return;
    notify();
  }

  async function look(id: string): Promise<void> {
    const mine = (seq.get(id) ?? 0) + 1;
    seq.set(id, mine);
    for (let attempt = 0; ; attempt++) {
      const c = await engine.inspect(id);
      if (seq.get(id) !== mine) return; // a newer event took over
      apply(id, c);
      if (!c?.State.Running || !o.isPending(c) || attempt >= PENDING_RETRIES.length) return;
      await Bun.sleep(PENDING_RETRIES[attempt]!);
      if (seq.get(id) !== mine) return;
    }
  }

  function onEvent(e: EngineEvent): void {
    const id = e.Type === "container" ? e.Actor.ID : e.Actor.Attributes?.container;
    if (!id) return;
    if (e.Type === "container" && GONE.has(e.Action)) {
      seq.set(id, (seq.get(id) ?? 0) + 1);
      apply(id, null);
      return;
    }
    const relevant = e.Type === "network" ? e.Action === "connect" || e.Action === "disconnect" : LOOK.has(e.Action);
    if (relevant)
      look(id).catch((err: Error) => log.debug(`inspect ${id.slice(0, 12)} after ${e.Action}: ${err.message}`));
  }

  /** Lists and inspects everything; replaces the view (a diff happens downstream, never a flush). */
  async function fullSync(): Promise<void> {
    const ids = await engine.runningContainers();
    const fresh = new Map<string, ContainerInspect>();
    await Promise.all(
      ids.map(async (id) => {
        const c = await engine.inspect(id);
        if (c?.State.Running) fresh.set(id, c);
      }),
    );
    containers.clear();
    for (const [id, c] of fresh) containers.set(id, c);
    notify(true);
    for (const [id, c] of fresh) if (o.isPending(c)) void look(id).catch(() => undefined);
  }

  async function session(signal: AbortSignal, since: { value?: string }): Promise<void> {
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
        else onEvent(e);
      },
    });
    const timer = setInterval(() => {
      fullSync().catch((e: Error) => {
        log.debug(`resync failed: ${e.message}`);
        stream.abort();
      });
    }, o.resyncMs);
    try {
      await Promise.race([opened, events]);
      await fullSync();
      for (const e of queue!) onEvent(e);
      queue = null;
      connected = true;
      wasUp = true;
      log.info(
        `following engine ${engine.url} (engine ${engineVersion ?? "?"}, API ${apiVersion}): ${containers.size} running container(s)`,
      );
      await events;
      if (!signal.aborted) throw new Error("the event stream ended");
    } finally {
      clearInterval(timer);
      signal.removeEventListener("abort", stop);
      stream.abort();
      connected = false;
    }
  }

  return {
    containers,
    get connected() {
      return connected;
    },
    async run(signal) {
      const since: { value?: string } = {};
      let delay = 100;
      let failures = 0;
      let lastError = "";
      while (!signal.aborted) {
        try {
          await session(signal, since);
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
              `engine ${engine.url} unreachable: ${msg}; keeping what is published, retrying with backoff up to ${(o.backoffMaxMs ?? 5000) / 1000} s`,
            );
          } else if (msg !== lastError) log.debug(`engine still unreachable: ${msg}`);
          lastError = msg;
          await new Promise<void>((r) => {
            const t = setTimeout(r, delay);
            signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
          });
          delay = Math.min(o.backoffMaxMs ?? 5000, delay * 2);
        }
      }
    },
  };
}
