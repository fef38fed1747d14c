/**
 * `edgeport run`: follows the engine and keeps the host's listeners equal to what the running
 * containers publish. Wanted ports are computed from the watcher's view, plan() says what must
 * change, and this file only executes: open, close, retarget, each keyed by one port key.
 * A port that cannot be bound is reported (log once, state) and retried at the next resync.
 */
import type { ConsolaInstance } from "consola";
import type { Engine } from "../events/engine.ts";
import type { ContainerInspect } from "../events/schemas.ts";
import { type BindingPolicy, portKey, targetAddress, type WantedPort, wantedPorts } from "../events/wanted.ts";
import { createWatcher, type Watcher } from "../events/watcher.ts";
import type { Firewall } from "../firewall/index.ts";
import type { RelayClient } from "../relay/host/relay-client.ts";
import { isLoopback, isUnspecified, parseIp } from "../shared/address.ts";
import type { PortRules } from "../shared/config.ts";
import { asEdgeportError, EdgeportError } from "../shared/errors.ts";
import { formatMapping, type PortMapping, parsePortSpec } from "../shared/port-spec.ts";
import { plan } from "./plan.ts";
import { openTcpListener, type TcpListener } from "./tcp-listener.ts";
import { openUdpListener, type UdpListener, type UdpOptions, type UdpStats } from "./udp-listener.ts";

type Listener = TcpListener | UdpListener;

export interface DaemonOptions {
  /** null: no engine to follow (ports come only from the API and docker-proxy) */
  engine: Engine | null;
  relay: RelayClient;
  binding: BindingPolicy;
  resyncMs: number;
  pipeWaitMs: number;
  udp: UdpOptions;
  /** told about every change of the bound listeners (applies in the background) */
  firewall?: Firewall;
  /** ignore rules and reserved ports from the config */
  rules?: PortRules;
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
  /** where it came from: a container, an ad-hoc publish, or dockerd's userland proxy */
  source: { kind: "container" | "ad-hoc" | "docker-proxy"; containerId?: string; containerName?: string };
  /** the id to unpublish it with (ad-hoc and docker-proxy), or `c-<container id>` */
  id: string;
  proto: "tcp" | "udp";
  /** each connection starts with a PROXY protocol v2 header */
  proxyProtocol?: boolean;
  /** open connections (TCP) or flows (UDP) */
  connections?: number;
  connectionsTotal?: number;
  bytesIn?: number;
  bytesOut?: number;
  udp?: UdpStats;
}

export type PortSource = "ad-hoc" | "docker-proxy";

export interface ProxyRequest {
  proto: "tcp" | "udp";
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

export interface AdhocEntry {
  id: string;
  spec: string;
  source: PortSource;
  wants: WantedPort[];
}

export interface DaemonState {
  engine: { url: string; connected: boolean } | null;
  /** lastFailure: why the pipe is down (the relay client's last failure) */
  pipe: { url: string; up: boolean; peer?: string; lastFailure?: string };
  binding: BindingPolicy;
  udp: UdpOptions;
  containers: number;
  ports: PortState[];
}

export interface Daemon {
  state(): DaemonState;
  /**
   * Publishes a SPEC by hand (or for dockerd's proxy). Idempotent: the same spec gives the same id.
   * Throws EdgeportError: E_BAD_SPEC / E_BAD_ARG (bad input), E_CONFLICT (a host port already
   * published by someone else), E_PORT_IN_USE / E_ADDR_NOT_AVAILABLE / E_PERMISSION (bind failed;
   * nothing of the spec stays published).
   */
  publish(
    spec: string,
    source?: PortSource,
    opts?: { proxyProtocol?: boolean },
  ): Promise<{ id: string; created: boolean; ports: PortState[] }>;
  /** Unpublishes an ad-hoc entry by id or spec; false when there was none. */
  unpublish(idOrSpec: string): Promise<boolean>;
  /**
   * dockerd's userland proxy asks for a binding. The host's binding policy decides the address
   * (dockerd says 0.0.0.0 or :: when the user named none). Counted: two proxies (0.0.0.0 and ::)
   * that land on the same host ports share one entry, unpublished when the last one releases it.
   */
  publishProxy(req: ProxyRequest): Promise<{ id: string; ports: PortState[] }>;
  releaseProxy(id: string): Promise<void>;
  /** runs until the signal aborts, then closes every listener */
  run(signal: AbortSignal): Promise<void>;
}

const mappingOf = (w: WantedPort) => ({
  hostIp: w.hostIp,
  hostPort: w.hostPort,
  targetIp: w.targetIp,
  targetPort: w.targetPort,
  proto: w.proto,
  ...(w.proxyProtocol ? { proxyProtocol: true } : {}),
});

export function createDaemon(o: DaemonOptions): Daemon {
  const { log } = o;
  const bound = new Map<string, { want: WantedPort; listener: Listener }>();
  const failed = new Map<string, { want: WantedPort; error: EdgeportError }>();
  const adhoc = new Map<string, AdhocEntry>();
  let lastContainers: ReadonlyMap<string, ContainerInspect> = new Map();
  let conflicts: { want: WantedPort; winner: WantedPort }[] = [];
  const warned = new Set<string>();
  const once = (key: string, f: () => void) => {
    if (!warned.has(key)) {
      warned.add(key);
      f();
    }
  };
  let watcher: Watcher | undefined;
  const sourceOf = (w: WantedPort): PortState["source"] =>
    w.containerId.startsWith("adhoc:")
      ? { kind: adhoc.get(w.containerId.slice(6))?.source ?? "ad-hoc" }
      : { kind: "container", containerId: w.containerId, containerName: w.containerName };
  const idOf = (w: WantedPort) =>
    w.containerId.startsWith("adhoc:") ? w.containerId.slice(6) : `c-${w.containerId.slice(0, 12)}`;

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
    if (prev?.error.message !== error.message)
      log.error(`${describe(want)}: ${error.message}; retrying at the next resync`);
  }

  function open(want: WantedPort): void {
    const published = () => log.info(`published ${formatMapping(mappingOf(want))} (${describe(want)})`);
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

  function allowedByRules(p: WantedPort, c: ContainerInspect): boolean {
    const why = o.rules!.reserved(p.hostPort) ?? o.rules!.ignored(p.hostPort, p.containerName, c.Config?.Labels ?? {});
    if (!why) return true;
    once(`rules ${p.key} ${p.containerId}`, () =>
      log.info(`${p.key} of container ${p.containerName} not published: ${why}`),
    );
    return false;
  }

  function reconcile(containers: ReadonlyMap<string, ContainerInspect>, full: boolean): void {
    lastContainers = containers;
    const ordered = [...containers.values()].sort(
      (a, b) => (a.State.StartedAt ?? "").localeCompare(b.State.StartedAt ?? "") || a.Id.localeCompare(b.Id),
    );
    const lists: WantedPort[][] = [];
    for (const c of ordered) {
      const w = wantedPorts(c, o.binding);
      for (const msg of w.warnings) once(msg, () => log.warn(msg));
      lists.push(o.rules ? w.ports.filter((p) => allowedByRules(p, c)) : w.ports);
    }
    for (const e of adhoc.values()) lists.push(e.wants);
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
        log.info(`unpublished ${formatMapping(mappingOf(a.was))} (${describe(a.was)})`);
      } else if (a.kind === "retarget") {
        const b = bound.get(a.key)!;
        b.listener.retarget(mappingOf(a.want));
        b.want = a.want;
        log.info(`retargeted ${formatMapping(mappingOf(a.want))} (${describe(a.want)})`);
      } else {
        open(a.want);
      }
    }
    syncFirewall();
    conflicts = p.conflicts.map((c) => ({ want: c.loser, winner: c.winner }));
    for (const c of p.conflicts) {
      once(`conflict ${c.key} ${c.loser.containerId}`, () =>
        log.error(`${describe(c.loser)}: ${c.key} is already published for ${describe(c.winner)}; not published`),
      );
    }
  }

  function traffic(l: Listener): Partial<PortState> {
    if ("flowsOpened" in (l.stats() as object)) {
      const u = (l as UdpListener).stats();
      return {
        connections: u.flows,
        connectionsTotal: u.flowsOpened,
        bytesIn: u.bytesIn,
        bytesOut: u.bytesOut,
        udp: u,
      };
    }
    const t = (l as TcpListener).stats();
    return {
      connections: l.connections,
      connectionsTotal: t.connectionsTotal,
      bytesIn: t.bytesIn,
      bytesOut: t.bytesOut,
    };
  }

  function describe(w: WantedPort): string {
    const src = sourceOf(w);
    return src.kind === "container" ? `container ${w.containerName}` : `${src.kind} ${idOf(w)}`;
  }

  /** the host addresses a spec asked for, after the binding policy (local-only narrows to loopback) */
  function applyPolicy(m: PortMapping, spec: string): PortMapping[] {
    const ip = parseIp(m.hostIp);
    if (o.binding !== "local-only" || isLoopback(ip)) return [m];
    const lo = ip.family === 6 ? "::1" : "127.0.0.1";
    once(`narrow ${spec} ${m.hostIp}`, () =>
      log.warn(`${spec}: --binding local-only publishes ${m.hostIp} on ${lo} instead`),
    );
    return [{ ...m, hostIp: lo }];
  }

  async function resolveTarget(name: string): Promise<string> {
    if (!o.engine)
      throw new EdgeportError(
        "E_BAD_SPEC",
        `target "${name}" is not an IP address, and this daemon follows no engine to resolve container names`,
      );
    let c: ContainerInspect | null;
    try {
      c = await o.engine.inspect(name);
    } catch (e) {
      throw new EdgeportError("E_DIAL", `cannot resolve container "${name}": ${(e as Error).message}`);
    }
    if (!c) throw new EdgeportError("E_BAD_SPEC", `no container named "${name}"`);
    if (!c.State.Running) throw new EdgeportError("E_BAD_SPEC", `container "${name}" is not running`);
    const ip = targetAddress(c);
    if (!ip) throw new EdgeportError("E_BAD_SPEC", `container "${name}" has no IP address (host network, or none)`);
    return ip;
  }

  async function entryOf(spec: string, source: PortSource, proxyProtocol = false): Promise<AdhocEntry> {
    const parsed = parsePortSpec(spec, { targetNames: true });
    if (proxyProtocol && parsed.some((m) => m.proto !== "tcp"))
      throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": the PROXY protocol is for TCP only`);
    const names = new Map<string, string>();
    for (const m of parsed)
      if (m.targetName && !names.has(m.targetName)) names.set(m.targetName, await resolveTarget(m.targetName));
    const mappings = parsed.flatMap((m) =>
      applyPolicy(
        {
          hostIp: m.hostIp,
          hostPort: m.hostPort,
          proto: m.proto,
          targetPort: m.targetPort,
          targetIp: m.targetName ? names.get(m.targetName)! : m.targetIp,
        },
        spec,
      ),
    );
    for (const m of mappings) {
      if (isUnspecified(parseIp(m.targetIp)))
        throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": the target address is unspecified`);
    }
    for (const m of mappings) {
      const why = o.rules?.reserved(m.hostPort);
      if (why) throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": ${why}`);
    }
    const canon = mappings
      .map(
        (m) => `${m.proto} ${m.hostIp} ${m.hostPort} ${m.targetIp} ${m.targetPort}${proxyProtocol ? " proxy-v2" : ""}`,
      )
      .sort()
      .join(",");
    const id = new Bun.CryptoHasher("sha256").update(canon).digest("hex").slice(0, 12);
    const keys = new Set<string>();
    const wants = mappings.map((m) => {
      const key = portKey(m.proto, m.hostIp, m.hostPort);
      if (keys.has(key)) throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": ${key} appears twice`);
      keys.add(key);
      return {
        key,
        ...m,
        containerId: `adhoc:${id}`,
        containerName: source === "docker-proxy" ? "(docker-proxy)" : "(ad-hoc)",
        ...(proxyProtocol ? { proxyProtocol } : {}),
      } satisfies WantedPort;
    });
    return { id, spec, source, wants };
  }

  async function publish(
    spec: string,
    source: PortSource = "ad-hoc",
    opts: { proxyProtocol?: boolean } = {},
  ): Promise<{ id: string; created: boolean; ports: PortState[] }> {
    const entry = await entryOf(spec, source, !!opts.proxyProtocol);
    const rows = () => api.state().ports.filter((p) => p.id === entry.id);
    if (adhoc.has(entry.id)) return { id: entry.id, created: false, ports: rows() };
    // a host port someone else already publishes is a conflict, never taken over
    for (const w of entry.wants) {
      const holder = bound.get(w.key)?.want ?? [...adhoc.values()].flatMap((e) => e.wants).find((x) => x.key === w.key);
      if (holder) throw new EdgeportError("E_CONFLICT", `${w.key} is already published for ${describe(holder)}`);
    }
    adhoc.set(entry.id, entry);
    reconcile(lastContainers, false);
    await Promise.all(
      entry.wants
        .map((w) => bound.get(w.key)?.listener)
        .filter((l): l is UdpListener => !!l && "ready" in l)
        .map((l) => l.ready.catch(() => {})),
    );
    const problems = entry.wants.flatMap((w) => {
      const f = failed.get(w.key);
      if (f) return [f.error];
      const c = conflicts.find((x) => x.want.key === w.key && x.want.containerId === w.containerId);
      return c ? [new EdgeportError("E_CONFLICT", `${w.key} is already published for ${describe(c.winner)}`)] : [];
    });
    if (problems.length) {
      adhoc.delete(entry.id);
      reconcile(lastContainers, false);
      for (const w of entry.wants) failed.delete(w.key);
      const first = problems[0]!;
      throw new EdgeportError(
        first.code,
        problems.length > 1
          ? `${first.message} (and ${problems.length - 1} more); nothing of "${spec}" was published`
          : `${first.message}; nothing of "${spec}" was published`,
      );
    }
    log.info(`${source} ${entry.id}: published ${spec}`);
    return { id: entry.id, created: true, ports: rows() };
  }

  async function unpublish(idOrSpec: string): Promise<boolean> {
    let id = idOrSpec;
    if (!adhoc.has(id) && idOrSpec.includes(":")) {
      // the same SPEC published with or without the PROXY header
      const plain = (await entryOf(idOrSpec, "ad-hoc")).id;
      const proxied = parsePortSpec(idOrSpec, { targetNames: true }).every((m) => m.proto === "tcp")
        ? (await entryOf(idOrSpec, "ad-hoc", true)).id
        : plain;
      id = adhoc.has(proxied) ? proxied : plain;
    }
    const e = adhoc.get(id);
    if (!e) return false;
    adhoc.delete(id);
    reconcile(lastContainers, false);
    log.info(`${e.source} ${id}: unpublished ${e.spec}`);
    return true;
  }

  const proxyRefs = new Map<string, number>();
  const bracket = (ip: string) => (ip.includes(":") ? `[${ip}]` : ip);

  async function publishProxy(req: ProxyRequest): Promise<{ id: string; ports: PortState[] }> {
    const host = parseIp(req.hostIp);
    const hostPart = isUnspecified(host) && o.binding !== "open" ? "" : `${bracket(host.text)}:`;
    const r = await publish(
      `${hostPart}${req.hostPort}:${bracket(parseIp(req.containerIp).text)}:${req.containerPort}/${req.proto}`,
      "docker-proxy",
    );
    proxyRefs.set(r.id, (proxyRefs.get(r.id) ?? 0) + 1);
    return { id: r.id, ports: r.ports };
  }

  async function releaseProxy(id: string): Promise<void> {
    const n = (proxyRefs.get(id) ?? 0) - 1;
    if (n > 0) {
      proxyRefs.set(id, n);
      return;
    }
    proxyRefs.delete(id);
    if (adhoc.get(id)?.source === "docker-proxy") await unpublish(id);
  }

  const api: Daemon = {
    state() {
      const ports: PortState[] = [];
      const row = (
        w: WantedPort,
        status: PortState["status"],
        error?: EdgeportError | string,
        l?: Listener,
      ): PortState => ({
        key: w.key,
        id: idOf(w),
        proto: w.proto,
        source: sourceOf(w),
        host: `${w.hostIp.includes(":") ? `[${w.hostIp}]` : w.hostIp}:${w.hostPort}`,
        target: `${w.targetIp.includes(":") ? `[${w.targetIp}]` : w.targetIp}:${w.targetPort}`,
        container: w.containerName,
        status,
        ...(w.proxyProtocol ? { proxyProtocol: true } : {}),
        ...(error
          ? {
              error: typeof error === "string" ? error : error.message,
              ...(typeof error === "string" ? {} : { code: error.code }),
            }
          : {}),
        ...(l ? traffic(l) : {}),
      });
      for (const { want, listener } of bound.values()) ports.push(row(want, "published", undefined, listener));
      for (const { want, error } of failed.values()) ports.push(row(want, "failed", error));
      for (const { want, winner } of conflicts)
        ports.push(row(want, "conflict", `already published for ${describe(winner)}`));
      return {
        engine: o.engine ? { url: o.engine.url, connected: watcher?.connected ?? false } : null,
        pipe: {
          url: o.relay.description,
          up: o.relay.current !== null,
          ...(o.relay.current ? { peer: o.relay.current.describePeer() } : {}),
          ...(o.relay.lastFailure ? { lastFailure: o.relay.lastFailure } : {}),
        },
        binding: o.binding,
        udp: o.udp,
        containers: watcher?.containers.size ?? 0,
        ports: ports.sort((a, b) => a.key.localeCompare(b.key)),
      };
    },
    publish,
    unpublish,
    publishProxy,
    releaseProxy,
    async run(signal) {
      if (o.engine) {
        watcher = createWatcher({
          engine: o.engine,
          log,
          resyncMs: o.resyncMs,
          isPending: (c) => wantedPorts(c, o.binding).pending,
          onChange: reconcile,
        });
        await watcher.run(signal);
      } else {
        const resync = setInterval(() => reconcile(lastContainers, true), o.resyncMs);
        await new Promise<void>((r) =>
          signal.aborted ? r() : signal.addEventListener("abort", () => r(), { once: true }),
        );
        clearInterval(resync);
      }
      await Promise.all([...bound.values()].map((b) => b.listener.close(1000)));
      bound.clear();
      syncFirewall();
    },
  };
  return api;
}
