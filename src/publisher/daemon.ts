/**
 * `edgeport run`: follows the engine and keeps the host's listeners equal to what the running
 * containers publish. Wanted ports are computed from the watcher's view, plan() says what must
 * change, and this file only executes: open, close, retarget, each keyed by one port key.
 * A port that cannot be bound is reported (log once, state) and retried at the next resync.
 */
import type { ConsolaInstance } from "consola";
import type { Engine } from "../events/engine.ts";
import type { ContainerInspect } from "../events/schemas.ts";
import { createWatcher, type Watcher } from "../events/watcher.ts";
import { wantedPorts, type BindingPolicy, type WantedPort } from "../events/wanted.ts";
import { asEdgeportError, type EdgeportError } from "../shared/errors.ts";
import { formatMapping } from "../shared/port-spec.ts";
import { plan } from "./plan.ts";
import type { RelayClient } from "./relay-client.ts";
import { openTcpListener, type TcpListener } from "./tcp-listener.ts";

export interface DaemonOptions {
  engine: Engine;
  relay: RelayClient;
  binding: BindingPolicy;
  resyncMs: number;
  pipeWaitMs: number;
  log: ConsolaInstance;
}

export interface PortState {
  key: string;
  host: string;
  target: string;
  container: string;
  status: "published" | "failed" | "conflict" | "unsupported";
  error?: string;
  code?: string;
}

export interface DaemonState {
  engine: { url: string; connected: boolean };
  pipe: { url: string; up: boolean; peer?: string };
  binding: BindingPolicy;
  containers: number;
  ports: PortState[];
}

export interface Daemon {
  state(): DaemonState;
  /** runs until the signal aborts, then closes every listener */
  run(signal: AbortSignal): Promise<void>;
}

const mappingOf = (w: WantedPort) => ({ hostIp: w.hostIp, hostPort: w.hostPort, targetIp: w.targetIp, targetPort: w.targetPort, proto: w.proto });

export function createDaemon(o: DaemonOptions): Daemon {
  const { log } = o;
  const bound = new Map<string, { want: WantedPort; listener: TcpListener }>();
  const failed = new Map<string, { want: WantedPort; error: EdgeportError }>();
  let conflicts: { want: WantedPort; winner: WantedPort }[] = [];
  let unsupported: WantedPort[] = [];
  const warned = new Set<string>();
  const once = (key: string, f: () => void) => {
    if (!warned.has(key)) {
      warned.add(key);
      f();
    }
  };
  let watcher: Watcher;

  function reconcile(containers: ReadonlyMap<string, ContainerInspect>, full: boolean): void {
    const ordered = [...containers.values()].sort((a, b) => (a.State.StartedAt ?? "").localeCompare(b.State.StartedAt ?? "") || a.Id.localeCompare(b.Id));
    const lists: WantedPort[][] = [];
    const nextUnsupported: WantedPort[] = [];
    for (const c of ordered) {
      const w = wantedPorts(c, o.binding);
      for (const msg of w.warnings) once(msg, () => log.warn(msg));
      const tcp = w.ports.filter((p) => p.proto === "tcp");
      for (const p of w.ports) if (p.proto !== "tcp") nextUnsupported.push(p);
      lists.push(tcp);
    }
    unsupported = nextUnsupported;
    for (const p of unsupported) once(`udp ${p.key} ${p.containerId}`, () => log.info(`${p.key} for container ${p.containerName}: UDP publishing is not supported yet`));
    // failed binds wait for a resync; everything else is retried now
    const hold = full ? new Set<string>() : new Set(failed.keys());
    const published = new Map([...bound].map(([k, v]) => [k, v.want]));
    const p = plan(lists, published, hold);
    const wantedKeys = new Set(lists.flat().map((x) => x.key));
    for (const k of failed.keys()) if (!wantedKeys.has(k)) failed.delete(k);
    for (const a of p.actions) {
      if (a.kind === "close") {
        const b = bound.get(a.key)!;
        bound.delete(a.key);
        void b.listener.close(0);
        log.info(`unpublished ${formatMapping(mappingOf(a.was))} (container ${a.was.containerName})`);
      } else if (a.kind === "retarget") {
        const b = bound.get(a.key)!;
        b.listener.retarget(mappingOf(a.want));
        b.want = a.want;
        log.info(`retargeted ${formatMapping(mappingOf(a.want))} (container ${a.want.containerName})`);
      } else {
        try {
          const listener = openTcpListener(mappingOf(a.want), o.relay, { log, pipeWaitMs: o.pipeWaitMs, quiet: true });
          bound.set(a.want.key, { want: a.want, listener });
          failed.delete(a.want.key);
          log.info(`published ${formatMapping(mappingOf(a.want))} (container ${a.want.containerName})`);
        } catch (e) {
          const error = asEdgeportError(e);
          const prev = failed.get(a.want.key);
          failed.set(a.want.key, { want: a.want, error });
          if (prev?.error.message !== error.message) log.error(`container ${a.want.containerName}: ${error.message}; retrying at the next resync`);
        }
      }
    }
    conflicts = p.conflicts.map((c) => ({ want: c.loser, winner: c.winner }));
    for (const c of p.conflicts) {
      once(`conflict ${c.key} ${c.loser.containerId}`, () =>
        log.error(`container ${c.loser.containerName}: ${c.key} is already published for container ${c.winner.containerName}; not published`),
      );
    }
  }

  return {
    state() {
      const ports: PortState[] = [];
      const row = (w: WantedPort, status: PortState["status"], error?: EdgeportError | string) => ({
        key: w.key,
        host: `${w.hostIp.includes(":") ? `[${w.hostIp}]` : w.hostIp}:${w.hostPort}`,
        target: `${w.targetIp.includes(":") ? `[${w.targetIp}]` : w.targetIp}:${w.targetPort}`,
        container: w.containerName,
        status,
        ...(error ? { error: typeof error === "string" ? error : error.message, ...(typeof error === "string" ? {} : { code: error.code }) } : {}),
      });
      for (const { want } of bound.values()) ports.push(row(want, "published"));
      for (const { want, error } of failed.values()) ports.push(row(want, "failed", error));
      for (const { want, winner } of conflicts) ports.push(row(want, "conflict", `already published for container ${winner.containerName}`));
      for (const w of unsupported) ports.push(row(w, "unsupported", "UDP publishing is not supported yet"));
      return {
        engine: { url: o.engine.url, connected: watcher?.connected ?? false },
        pipe: { url: o.relay.description, up: o.relay.current !== null, ...(o.relay.current ? { peer: o.relay.current.describePeer() } : {}) },
        binding: o.binding,
        containers: watcher?.containers.size ?? 0,
        ports: ports.sort((a, b) => a.key.localeCompare(b.key)),
      };
    },
    async run(signal) {
      watcher = createWatcher({
        engine: o.engine,
        log,
        resyncMs: o.resyncMs,
        isPending: (c) => wantedPorts(c, o.binding).pending,
        onChange: reconcile,
      });
      await watcher.run(signal);
      await Promise.all([...bound.values()].map((b) => b.listener.close(1000)));
      bound.clear();
    },
  };
}
