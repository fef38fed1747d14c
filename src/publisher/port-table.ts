/**
 * The host ports that are bound, or failed to bind, by port key: it executes plan()'s actions
 * (open, close, retarget) through an injected listener factory, logs each change, keeps the
 * firewall told, and remembers a failed bind (logged once) until it is retried or no longer wanted.
 */
import type { ConsolaInstance } from "consola";
import type { WantedPort } from "../events/wanted.ts";
import type { Firewall } from "../firewall/index.ts";
import type { RelayClient } from "../relay/host/relay-client.ts";
import { asEdgeportError, type EdgeportError } from "../shared/errors.ts";
import { formatMapping, type PortMapping } from "../shared/port-spec.ts";
import type { FdGuard } from "./fd-guard.ts";
import type { Action } from "./plan.ts";
import type { Listener } from "./port-rows.ts";
import { openTcpListener } from "./tcp-listener.ts";
import { openUdpListener, type UdpOptions } from "./udp-listener.ts";

/** Opens a listener on a mapping: throws the bind error (TCP), or rejects `ready` with it (UDP). */
export type OpenListener = (m: PortMapping) => Listener;

export interface PortTableOptions {
  openListener: OpenListener;
  firewall?: Firewall;
  log: ConsolaInstance;
  /** names a port's owner in log lines: `container web`, `ad-hoc 0123456789ab` */
  describe(w: WantedPort): string;
  /** whether a failed bind of this port is retried at the next resync (else its owner reports it) */
  retried(w: WantedPort): boolean;
}

export interface PortTable {
  /** what is bound now (or binding: a UDP socket's bind completes later), by key */
  published(): Map<string, WantedPort>;
  bound(): { want: WantedPort; listener: Listener }[];
  listener(key: string): Listener | undefined;
  failures(): { want: WantedPort; error: EdgeportError }[];
  failure(key: string): EdgeportError | undefined;
  failedKeys(): Set<string>;
  /** forgets the failures of keys no longer wanted (or of one key) */
  forget(keep: ReadonlySet<string> | string): void;
  apply(actions: readonly Action[]): void;
  /** resolves when the listeners of these keys finished binding, either way */
  settled(keys: readonly string[]): Promise<void>;
  closeAll(graceMs: number): Promise<void>;
}

/** The real listeners: TCP or UDP on the relay. */
export function relayListeners(o: {
  relay: RelayClient;
  log: ConsolaInstance;
  pipeWaitMs: number;
  udp: UdpOptions;
  guard?: FdGuard;
}): OpenListener {
  const lo = { log: o.log, pipeWaitMs: o.pipeWaitMs, quiet: true };
  const tcp = { ...lo, guard: o.guard };
  return (m) =>
    m.proto === "udp" ? openUdpListener(m, o.relay, { ...lo, ...o.udp }) : openTcpListener(m, o.relay, tcp);
}

export const mappingOf = (w: WantedPort): PortMapping => ({
  hostIp: w.hostIp,
  hostPort: w.hostPort,
  targetIp: w.targetIp,
  targetPort: w.targetPort,
  proto: w.proto,
  ...(w.proxyProtocol ? { proxyProtocol: true } : {}),
});

export function createPortTable(o: PortTableOptions): PortTable {
  const { log, describe } = o;
  const bound = new Map<string, { want: WantedPort; listener: Listener }>();
  const failed = new Map<string, { want: WantedPort; error: EdgeportError }>();

  function syncFirewall(): void {
    o.firewall?.sync(
      [...bound.values()].map(({ want, listener }) => ({
        proto: want.proto,
        address: want.hostIp,
        port: listener.port || want.hostPort,
      })),
    );
  }

  function bindFailed(want: WantedPort, e: unknown): void {
    const error = asEdgeportError(e);
    const prev = failed.get(want.key);
    failed.set(want.key, { want, error });
    if (prev?.error.message !== error.message && o.retried(want))
      log.error(`${describe(want)}: ${error.message}; retrying at the next resync`);
  }

  function open(want: WantedPort): void {
    const published = () => log.info(`published ${formatMapping(mappingOf(want))} (${describe(want)})`);
    let listener: Listener;
    try {
      listener = o.openListener(mappingOf(want));
    } catch (e) {
      return bindFailed(want, e);
    }
    bound.set(want.key, { want, listener });
    failed.delete(want.key);
    if (listener.kind === "tcp") return published();
    // binding a UDP socket completes asynchronously: the key is held meanwhile
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
  }

  function apply(actions: readonly Action[]): void {
    for (const a of actions) {
      if (a.kind === "close") {
        const b = bound.get(a.key);
        if (!b) continue;
        bound.delete(a.key);
        void b.listener.close(0);
        log.info(`unpublished ${formatMapping(mappingOf(a.was))} (${describe(a.was)})`);
      } else if (a.kind === "retarget") {
        const b = bound.get(a.key);
        if (!b) continue;
        b.listener.retarget(mappingOf(a.want));
        b.want = a.want;
        log.info(`retargeted ${formatMapping(mappingOf(a.want))} (${describe(a.want)})`);
      } else {
        open(a.want);
      }
    }
    syncFirewall();
  }

  return {
    published: () => new Map([...bound].map(([k, v]) => [k, v.want])),
    bound: () => [...bound.values()],
    listener: (key) => bound.get(key)?.listener,
    failures: () => [...failed.values()],
    failure: (key) => failed.get(key)?.error,
    failedKeys: () => new Set(failed.keys()),
    forget(keep) {
      if (typeof keep === "string") failed.delete(keep);
      else for (const k of failed.keys()) if (!keep.has(k)) failed.delete(k);
    },
    apply,
    async settled(keys) {
      const udp = keys.map((k) => bound.get(k)?.listener).filter((l): l is Listener => l?.kind === "udp");
      await Promise.all(udp.map((l) => (l.kind === "udp" ? l.ready.catch(() => {}) : undefined)));
    },
    async closeAll(graceMs) {
      await Promise.all([...bound.values()].map((b) => b.listener.close(graceMs)));
      bound.clear();
      syncFirewall();
    },
  };
}
