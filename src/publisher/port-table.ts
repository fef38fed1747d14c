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
import { openUnixListener } from "./unix-listener.ts";

/** Opens a listener on a mapping: throws the bind error (TCP), or rejects `ready` with it (UDP, unix). */
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

/** The real listeners: TCP, UDP or a socket forward on the relay. */
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
    m.proto === "udp"
      ? openUdpListener(m, o.relay, { ...lo, ...o.udp })
      : m.proto === "unix"
        ? openUnixListener(m, o.relay, lo)
        : openTcpListener(m, o.relay, tcp);
}

export const mappingOf = (w: WantedPort): PortMapping => ({
  hostIp: w.hostIp,
  hostPort: w.hostPort,
  targetIp: w.targetIp,
  targetPort: w.targetPort,
  proto: w.proto,
  ...(w.proxyProtocol ? { proxyProtocol: true } : {}),
});

export const createPortTable = (o: PortTableOptions): PortTable => new Ports(o);

class Ports implements PortTable {
  private readonly ports = new Map<string, { want: WantedPort; listener: Listener }>();
  private readonly failed = new Map<string, { want: WantedPort; error: EdgeportError }>();

  constructor(private readonly o: PortTableOptions) {}

  private syncFirewall(): void {
    // a socket forward is a file, not a port: no firewall rule
    const ports = [...this.ports.values()].flatMap(({ want, listener }) =>
      want.proto === "unix" ? [] : [{ proto: want.proto, address: want.hostIp, port: listener.port || want.hostPort }],
    );
    this.o.firewall?.sync(ports);
  }

  private bindFailed(want: WantedPort, e: unknown): void {
    const error = asEdgeportError(e);
    const prev = this.failed.get(want.key);
    this.failed.set(want.key, { want, error });
    if (prev?.error.message !== error.message && this.o.retried(want))
      this.o.log.error(`${this.o.describe(want)}: ${error.message}; retrying at the next resync`);
  }

  private logChange(what: string, w: WantedPort): void {
    this.o.log.info(`${what} ${formatMapping(mappingOf(w))} (${this.o.describe(w)})`);
  }

  private open(want: WantedPort): void {
    let listener: Listener;
    try {
      listener = this.o.openListener(mappingOf(want));
    } catch (e) {
      return this.bindFailed(want, e);
    }
    this.ports.set(want.key, { want, listener });
    this.failed.delete(want.key);
    if (listener.kind === "tcp") return this.logChange("published", want);
    // binding a UDP socket (or making a socket forward's file) completes asynchronously: the key is held meanwhile
    listener.ready.then(
      () => {
        this.logChange("published", want);
        this.syncFirewall();
      },
      (e) => {
        if (this.ports.get(want.key)?.listener !== listener) return;
        this.ports.delete(want.key);
        this.bindFailed(want, e);
        this.syncFirewall();
      },
    );
  }

  apply(actions: readonly Action[]): void {
    for (const a of actions) {
      if (a.kind === "open") {
        this.open(a.want);
        continue;
      }
      const b = this.ports.get(a.key);
      if (!b) continue;
      if (a.kind === "close") {
        this.ports.delete(a.key);
        void b.listener.close(0);
        this.logChange("unpublished", a.was);
      } else {
        b.listener.retarget(mappingOf(a.want));
        b.want = a.want;
        this.logChange("retargeted", a.want);
      }
    }
    this.syncFirewall();
  }

  published(): Map<string, WantedPort> {
    return new Map([...this.ports].map(([k, v]) => [k, v.want]));
  }

  bound(): { want: WantedPort; listener: Listener }[] {
    return [...this.ports.values()];
  }

  listener(key: string): Listener | undefined {
    return this.ports.get(key)?.listener;
  }

  failures(): { want: WantedPort; error: EdgeportError }[] {
    return [...this.failed.values()];
  }

  failure(key: string): EdgeportError | undefined {
    return this.failed.get(key)?.error;
  }

  failedKeys(): Set<string> {
    return new Set(this.failed.keys());
  }

  forget(keep: ReadonlySet<string> | string): void {
    if (typeof keep === "string") this.failed.delete(keep);
    else for (const k of this.failed.keys()) if (!keep.has(k)) this.failed.delete(k);
  }

  async settled(keys: readonly string[]): Promise<void> {
    const ready = keys.flatMap((k) => {
      const l = this.ports.get(k)?.listener;
      return l && l.kind !== "tcp" ? [l.ready.catch(() => {})] : [];
    });
    await Promise.all(ready);
  }

  async closeAll(graceMs: number): Promise<void> {
    await Promise.all([...this.ports.values()].map((b) => b.listener.close(graceMs)));
    this.ports.clear();
    this.syncFirewall();
  }
}
