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
import type { Firewall } from "../firewall/index.ts";
import type { RelayClient } from "./relay-client.ts";
import { openTcpListener, type TcpListener } from "./tcp-listener.ts";
import { openUdpListener, type UdpListener, type UdpOptions, type UdpStats } from "./udp-listener.ts";

type Listener = TcpListener | UdpListener;

export interface DaemonOptions {
  engine: Engine;
  relay: RelayClient;
  binding: BindingPolicy;
  resyncMs: number;
  pipeWaitMs: number;
  udp: UdpOptions;
  /** told about every change of the bound listeners (applies in the background) */
  firewall?: Firewall;
  log: ConsolaInstance;
}

export interface PortState {
  key: string;
  host: string;
  target: string;
  container: string;
  status: "published" | "failed" | "conflict";
  error?: string;
  code?: string;
  /** open connections (TCP) or flows (UDP) */
  connections?: number;
  udp?: UdpStats;
}

export interface DaemonState {
  engine: { url: string; connected: boolean };
  pipe: { url: string; up: boolean; peer?: string };
  binding: BindingPolicy;
  udp: UdpOptions;
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
  const bound = new Map<string, { want: WantedPort; listener: Listener }>();
  const failed = new Map<string, { want: WantedPort; error: EdgeportError }>();
  let conflicts: { want: WantedPort; winner: WantedPort }[] = [];
  const warned = new Set<string>();
  const once = (key: string, f: () => void) => {
    if (!warned.has(key)) {
      warned.add(key);
      f();
    }
  };
  let watcher: Watcher;

  function syncFirewall(): void {
    o.firewall?.sync([...bound.values()].map(({ want, listener }) => ({ proto: want.proto, address: want.hostIp, port: listener.port || want.hostPort })));
  }

  function bindFailed(want: WantedPort, e: unknown): void {
    const error = asEdgeportError(e);
    const prev = failed.get(want.key);
    failed.set(want.key, { want, error });
    if (prev?.error.message !== error.message) log.error(`container ${want.containerName}: ${error.message}; retrying at the next resync`);
  }

  function open(want: WantedPort): void {
    const published = () => log.info(`published ${formatMapping(mappingOf(want))} (container ${want.containerName})`);
    try {
      const lo = { log, pipeWaitMs: o.pipeWaitMs, quiet: true };
      if (want.proto === "udp") {
        // binding a UDP socket completes asynchronously: the key is held meanwhile
        const listener = openUdpListener(mappingOf(want), o.relay, { ...lo, ...o.udp });
        bound.set(want.key, { want, listener });
        failed.delete(want.key);
        listener.ready.then(
          () => {
            published();
            syncFirewall();
          },
          (e) => {
            if (bound.get(want.key)?.listener !== listener) return;
            bound.delete(want.key);
            bindFailed(want, e);
            syncFirewall();
          },
        );
        return;
      }
      const listener = openTcpListener(mappingOf(want), o.relay, lo);
      bound.set(want.key, { want, listener });
      failed.delete(want.key);
      published();
    } catch (e) {
      bindFailed(want, e);
    }
  }

  function reconcile(containers: ReadonlyMap<string, ContainerInspect>, full: boolean): void {
    const ordered = [...containers.values()].sort((a, b) => (a.State.StartedAt ?? "").localeCompare(b.State.StartedAt ?? "") || a.Id.localeCompare(b.Id));
    const lists: WantedPort[][] = [];
    for (const c of ordered) {
      const w = wantedPorts(c, o.binding);
      for (const msg of w.warnings) once(msg, () => log.warn(msg));
      lists.push(w.ports);
    }
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
        open(a.want);
      }
    }
    syncFirewall();
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
      const row = (w: WantedPort, status: PortState["status"], error?: EdgeportError | string, l?: Listener) => ({
        key: w.key,
        host: `${w.hostIp.includes(":") ? `[${w.hostIp}]` : w.hostIp}:${w.hostPort}`,
        target: `${w.targetIp.includes(":") ? `[${w.targetIp}]` : w.targetIp}:${w.targetPort}`,
        container: w.containerName,
        status,
        ...(error ? { error: typeof error === "string" ? error : error.message, ...(typeof error === "string" ? {} : { code: error.code }) } : {}),
        ...(l ? { connections: l.connections, ...("stats" in l ? { udp: l.stats() } : {}) } : {}),
      });
      for (const { want, listener } of bound.values()) ports.push(row(want, "published", undefined, listener));
      for (const { want, error } of failed.values()) ports.push(row(want, "failed", error));
      for (const { want, winner } of conflicts) ports.push(row(want, "conflict", `already published for container ${winner.containerName}`));
      return {
        engine: { url: o.engine.url, connected: watcher?.connected ?? false },
        pipe: { url: o.relay.description, up: o.relay.current !== null, ...(o.relay.current ? { peer: o.relay.current.describePeer() } : {}) },
        binding: o.binding,
        udp: o.udp,
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
      syncFirewall();
    },
  };
}
