/**
 * `edgeport run`: follows the engine and keeps the host's listeners equal to what the running
 * containers publish, plus the ad-hoc entries (the API, dockerd's proxy). Wanted ports are computed
 * from the watcher's view, plan() says what must change, and the port table executes it.
 * A container's port that cannot be bound is reported (log once, state) and retried at the next
 * resync; an ad-hoc spec that cannot be bound is rolled back and the caller told. Ad-hoc specs
 * are kept in the state file (port-store.ts) and restored at start (adhoc-restore.ts).
 */
import type { ConsolaInstance } from "consola";
import type { ContainerInspect } from "../events/schemas.ts";
import { type WantedPort, wantedPorts } from "../events/wanted.ts";
import { createWatcher, type Watcher } from "../events/watcher.ts";
import { EdgeportError } from "../shared/errors.ts";
import { type AdhocEntry, adhocEntry, adhocIdOf, allTcp, type PortSource, portIdOf, targetNames } from "./adhoc.ts";
import { createRestorer, type Restorer } from "./adhoc-restore.ts";
import type { DaemonOptions } from "./daemon-options.ts";
import { daemonState, wantedLists } from "./daemon-state.ts";
import { type FdGuard, processFdGuard } from "./fd-guard.ts";
import { plan } from "./plan.ts";
import type { DaemonState, PortState } from "./port-rows.ts";
import { createPortTable, type PortTable, relayListeners } from "./port-table.ts";
import { createProxyLeases, type ProxyRequest, proxySpec } from "./proxy-leases.ts";
import { resolveTarget } from "./target.ts";
import { vmIdOf, vmProcessOf, vmSourceOf } from "./vm-source.ts";

export type { AdhocEntry, PortSource } from "./adhoc.ts";
export type { DaemonOptions } from "./daemon-options.ts";
export type { DaemonState, FdState, PortState } from "./port-rows.ts";
export type { ProxyRequest } from "./proxy-leases.ts";

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
    /** keep: false: not written to the state file (the config's publish list, published at each start) */
    opts?: { proxyProtocol?: boolean; keep?: boolean },
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

export const createDaemon = (o: DaemonOptions): Daemon => new Reconciler(o);

class Reconciler implements Daemon {
  private readonly log: ConsolaInstance;
  private readonly table: PortTable;
  private readonly adhoc = new Map<string, AdhocEntry>();
  private readonly restored = new Set<string>(); // kept when a bind fails, retried as a container's port is
  private readonly leases = createProxyLeases();
  private lastContainers: ReadonlyMap<string, ContainerInspect> = new Map();
  private conflicts: { want: WantedPort; winner: WantedPort }[] = [];
  private readonly warned = new Set<string>();
  private watcher: Watcher | undefined;
  private readonly guard: FdGuard;
  private readonly restoring: Restorer; // the state file's specs, restored at start

  constructor(private readonly o: DaemonOptions) {
    this.log = o.log;
    this.guard = o.fdGuard ?? processFdGuard(o.log);
    this.table = createPortTable({
      openListener: o.openListener ?? relayListeners({ ...o, guard: this.guard }),
      firewall: o.firewall,
      log: o.log,
      describe: (w) => this.describe(w),
      // an ad-hoc spec is rolled back, and its caller told, when a bind fails
      retried: (w) => adhocIdOf(w) === null || this.restored.has(adhocIdOf(w)!),
    });
    this.restoring = createRestorer({
      ...o,
      entryOf: (spec, source, proxy) => this.entryOf(spec, source, proxy),
      has: (id) => this.adhoc.has(id),
      add: (entries) => this.addRestored(entries),
      problemsOf: (e) => this.problemsOf(e),
    });
  }

  private once(key: string, f: () => void): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    f();
  }

  private sourceOf(w: WantedPort): PortState["source"] {
    const id = adhocIdOf(w);
    if (id === null)
      return vmSourceOf(w) ?? { kind: "container", containerId: w.containerId, containerName: w.containerName };
    const e = this.adhoc.get(id);
    if (e?.source !== "ad-hoc" || !this.o.store) return { kind: e?.source ?? "ad-hoc" };
    return { kind: "ad-hoc", persisted: this.o.store.has({ spec: e.spec, proxyProtocol: e.proxyProtocol }) };
  }

  private describe(w: WantedPort): string {
    const src = this.sourceOf(w);
    if (src.kind === "vm") return `VM listener ${src.process}`;
    return src.kind === "container" ? `container ${w.containerName}` : `${src.kind} ${portIdOf(w)}`;
  }

  private reconcile(containers: ReadonlyMap<string, ContainerInspect>, full: boolean): void {
    this.lastContainers = containers;
    const lists = wantedLists(containers, this.adhoc.values(), {
      ...this.o,
      note: (key, level, msg) => this.once(key, () => this.log[level](msg)),
    });
    // failed binds wait for a resync; everything else is retried now
    const hold = full ? new Set<string>() : this.table.failedKeys();
    const p = plan(lists, this.table.published(), hold);
    this.table.forget(new Set(lists.flat().map((x) => x.key)));
    this.table.apply(p.actions);
    this.conflicts = p.conflicts.map((c) => ({ want: c.loser, winner: c.winner }));
    for (const c of p.conflicts) {
      this.once(`conflict ${c.key} ${c.loser.containerId}`, () =>
        this.log.error(
          `${this.describe(c.loser)}: ${c.key} is already published for ${this.describe(c.winner)}; not published`,
        ),
      );
    }
  }

  private async addRestored(entries: AdhocEntry[]): Promise<void> {
    for (const e of entries) this.adhoc.set(e.id, e);
    for (const e of entries) this.restored.add(e.id);
    this.reconcile(this.lastContainers, false);
    await this.table.settled(entries.flatMap((e) => e.wants.map((w) => w.key)));
  }

  /** Keeps an ad-hoc entry in the state file; a failed write is logged, the entry stays published. */
  private persist(e: AdhocEntry): void {
    if (e.source !== "ad-hoc" || !this.o.store) return;
    try {
      this.o.store.add({ spec: e.spec, proxyProtocol: e.proxyProtocol });
    } catch (err) {
      this.log.error(
        `ad-hoc ${e.id}: not kept across restarts: cannot write ${this.o.store.path}: ${(err as Error).message}`,
      );
    }
  }

  private async entryOf(spec: string, source: PortSource, proxyProtocol = false): Promise<AdhocEntry> {
    const names = new Map<string, string>();
    for (const n of targetNames(spec)) names.set(n, await resolveTarget(this.o.engine, n));
    const r = adhocEntry(spec, source, proxyProtocol, {
      binding: this.o.binding,
      reserved: this.o.rules?.reserved,
      names,
    });
    for (const note of r.notes) this.once(note, () => this.log.warn(note));
    return r.entry;
  }

  /** Why each of an entry's ports is not published now (a failed bind, a conflict); empty when all are. */
  private problemsOf(entry: AdhocEntry): EdgeportError[] {
    return entry.wants.flatMap((w) => {
      const f = this.table.failure(w.key);
      if (f) return [f];
      const c = this.conflicts.find((x) => x.want.key === w.key && x.want.containerId === w.containerId);
      return c ? [new EdgeportError("E_CONFLICT", `${w.key} is already published for ${this.describe(c.winner)}`)] : [];
    });
  }

  async publish(
    spec: string,
    source: PortSource = "ad-hoc",
    opts: { proxyProtocol?: boolean; keep?: boolean } = {},
  ): Promise<{ id: string; created: boolean; ports: PortState[] }> {
    const keep = opts.keep !== false;
    const entry = await this.entryOf(spec, source, !!opts.proxyProtocol);
    const rows = () => this.state().ports.filter((p) => p.id === entry.id);
    if (this.adhoc.has(entry.id)) {
      if (keep) this.persist(this.adhoc.get(entry.id)!);
      return { id: entry.id, created: false, ports: rows() };
    }
    // a host port someone else already publishes is a conflict, never taken over (a VM listener yields it)
    const published = this.table.published();
    for (const w of entry.wants) {
      const holder =
        published.get(w.key) ?? [...this.adhoc.values()].flatMap((e) => e.wants).find((x) => x.key === w.key);
      if (holder && vmProcessOf(holder) === null)
        throw new EdgeportError("E_CONFLICT", `${w.key} is already published for ${this.describe(holder)}`);
    }
    this.adhoc.set(entry.id, entry);
    this.reconcile(this.lastContainers, false);
    await this.table.settled(entry.wants.map((w) => w.key));
    const problems = this.problemsOf(entry);
    if (problems.length) {
      this.adhoc.delete(entry.id);
      this.reconcile(this.lastContainers, false);
      for (const w of entry.wants) this.table.forget(w.key);
      const first = problems[0]!;
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : "";
      const message = `${first.message}${more}; nothing of "${spec}" was published`;
      this.log.warn(`${source} ${entry.id}: ${message}`);
      throw new EdgeportError(first.code, message);
    }
    this.log.info(`${source} ${entry.id}: published ${spec}`);
    if (keep) this.persist(entry);
    return { id: entry.id, created: true, ports: rows() };
  }

  async unpublish(idOrSpec: string): Promise<boolean> {
    if (this.restoring.unpublish(idOrSpec)) return true;
    let id = idOrSpec;
    if (!this.adhoc.has(id) && idOrSpec.includes(":")) {
      // the same SPEC published with or without the PROXY header
      const plain = (await this.entryOf(idOrSpec, "ad-hoc")).id;
      const proxied = allTcp(idOrSpec) ? (await this.entryOf(idOrSpec, "ad-hoc", true)).id : plain;
      id = this.adhoc.has(proxied) ? proxied : plain;
    }
    const e = this.adhoc.get(id);
    if (!e) return false;
    this.adhoc.delete(id);
    this.restored.delete(id);
    this.reconcile(this.lastContainers, false);
    this.log.info(`${e.source} ${id}: unpublished ${e.spec}`);
    if (e.source === "ad-hoc") this.restoring.forget({ spec: e.spec, proxyProtocol: e.proxyProtocol });
    return true;
  }

  async publishProxy(req: ProxyRequest): Promise<{ id: string; ports: PortState[] }> {
    const r = await this.publish(proxySpec(req, this.o.binding), "docker-proxy");
    this.leases.acquire(r.id);
    return { id: r.id, ports: r.ports };
  }

  async releaseProxy(id: string): Promise<void> {
    if (!this.leases.release(id)) return;
    if (this.adhoc.get(id)?.source === "docker-proxy") await this.unpublish(id);
  }

  state(): DaemonState {
    return daemonState({
      ...this.o,
      table: this.table,
      watcher: this.watcher,
      conflicts: this.conflicts,
      fds: this.guard.state(),
      meta: (w) => ({ id: vmIdOf(w) ?? portIdOf(w), source: this.sourceOf(w) }),
      describe: (w) => this.describe(w),
    });
  }

  async run(signal: AbortSignal): Promise<void> {
    const { o } = this;
    o.vm?.onChange(() => this.reconcile(this.lastContainers, false));
    await this.restoring.restore();
    const retry = setInterval(() => void this.restoring.retry(), o.resyncMs);
    if (o.engine) {
      this.watcher = createWatcher({
        engine: o.engine,
        log: this.log,
        resyncMs: o.resyncMs,
        isPending: (c) => wantedPorts(c, o.binding).pending,
        onChange: (containers, full) => this.reconcile(containers, full),
      });
      await this.watcher.run(signal);
    } else {
      const resync = setInterval(() => this.reconcile(this.lastContainers, true), o.resyncMs);
      await new Promise<void>((r) =>
        signal.aborted ? r() : signal.addEventListener("abort", () => r(), { once: true }),
      );
      clearInterval(resync);
    }
    clearInterval(retry);
    await this.table.closeAll(1000);
  }
}
