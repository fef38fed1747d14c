/**
 * The running containers as the engine last told them: events applied as they come (a late
 * inspect never undoes a newer event), a full list replaces the view, and a container whose ports
 * are not visible yet is inspected again with backoff. Changes are reported once per microtask.
 */
import type { ConsolaInstance } from "consola";
import type { Engine } from "./engine.ts";
import type { ContainerInspect, EngineEvent } from "./schemas.ts";

const GONE = new Set(["die", "stop", "destroy", "oom"]);
const LOOK = new Set(["start", "unpause", "restart", "rename", "update", "kill", "health_status"]);
const PENDING_RETRIES = [25, 50, 100, 200, 400, 800, 1600];

export interface ContainerViewOptions {
  engine: Engine;
  log: ConsolaInstance;
  /** the running containers changed; `full` after a complete list (a resync) */
  onChange: (containers: ReadonlyMap<string, ContainerInspect>, full: boolean) => void;
  /** true when this container's ports are not visible yet (inspect again with backoff) */
  isPending: (c: ContainerInspect) => boolean;
}

export interface ContainerView {
  readonly containers: ReadonlyMap<string, ContainerInspect>;
  onEvent(e: EngineEvent): void;
  /** Lists and inspects everything; replaces the view (a diff happens downstream, never a flush). */
  fullSync(): Promise<void>;
}

export function createContainerView(o: ContainerViewOptions): ContainerView {
  const { engine, log } = o;
  const containers = new Map<string, ContainerInspect>();
  /** bumped by every event about a container: a late inspect never undoes a newer event */
  const seq = new Map<string, number>();
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

  return {
    containers,
    onEvent(e) {
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
    },
    async fullSync() {
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
    },
  };
}
