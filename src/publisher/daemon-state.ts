/**
 * Two pure pieces of the daemon (daemon.ts): every port it wants, in the order plan() settles
 * conflicts by, and its state as the control API shows it.
 */
import type { Engine } from "../events/engine.ts";
import type { ContainerInspect } from "../events/schemas.ts";
import { type BindingPolicy, type WantedPort, wantedPorts } from "../events/wanted.ts";
import type { RelayClient } from "../relay/host/relay-client.ts";
import type { PortRules } from "../shared/config.ts";
import type { AdhocEntry } from "./adhoc.ts";
import { type DaemonState, type FdState, type PortState, portRow } from "./port-rows.ts";
import type { PortTable } from "./port-table.ts";
import type { UdpOptions } from "./udp-listener.ts";
import type { VmSource } from "./vm-source.ts";

/** Every wanted port, containers in start order, then the ad-hoc entries, then the VM's listeners; `note` says each warning (once). */
export function wantedLists(
  containers: ReadonlyMap<string, ContainerInspect>,
  adhoc: Iterable<AdhocEntry>,
  o: {
    binding: BindingPolicy;
    rules?: PortRules;
    /** the VM's own listeners: what no other source wants */
    vm?: VmSource;
    note: (key: string, level: "info" | "warn", msg: string) => void;
  },
): WantedPort[][] {
  const { rules } = o;
  const allowed = (p: WantedPort, c: ContainerInspect): boolean => {
    const why = rules!.reserved(p.hostPort) ?? rules!.ignored(p.hostPort, p.containerName, c.Config?.Labels ?? {});
    if (why)
      o.note(
        `rules ${p.key} ${p.containerId}`,
        "info",
        `${p.key} of container ${p.containerName} not published: ${why}`,
      );
    return !why;
  };
  const ordered = [...containers.values()].sort(
    (a, b) => (a.State.StartedAt ?? "").localeCompare(b.State.StartedAt ?? "") || a.Id.localeCompare(b.Id),
  );
  const lists: WantedPort[][] = [];
  for (const c of ordered) {
    const w = wantedPorts(c, o.binding);
    for (const msg of w.warnings) o.note(msg, "warn", msg);
    lists.push(rules ? w.ports.filter((p) => allowed(p, c)) : w.ports);
  }
  for (const e of adhoc) lists.push(e.wants);
  if (o.vm) lists.push(o.vm.wants(lists.flat()));
  return lists;
}

export interface StateParts {
  engine: Engine | null;
  relay: RelayClient;
  binding: BindingPolicy;
  udp: UdpOptions;
  version?: string;
  watcher?: { connected: boolean; containers: ReadonlyMap<string, unknown> };
  table: Pick<PortTable, "bound" | "failures">;
  conflicts: { want: WantedPort; winner: WantedPort }[];
  fds?: FdState;
  vm?: VmSource;
  meta(w: WantedPort): { id: string; source: PortState["source"] };
  describe(w: WantedPort): string;
}

export function daemonState(o: StateParts): DaemonState {
  const { meta } = o;
  const ports: PortState[] = [
    ...o.table.bound().map(({ want, listener }) => portRow(want, "published", { ...meta(want), listener })),
    ...o.table.failures().map(({ want, error }) => portRow(want, "failed", { ...meta(want), error })),
    ...o.conflicts.map(({ want, winner }) =>
      portRow(want, "conflict", { ...meta(want), error: `already published for ${o.describe(winner)}` }),
    ),
  ];
  return {
    engine: o.engine
      ? {
          url: o.engine.url,
          ...(o.engine.via ? { via: o.engine.via } : {}),
          connected: o.watcher?.connected ?? false,
        }
      : null,
    pipe: {
      url: o.relay.description,
      up: o.relay.current !== null,
      ...(o.relay.current ? { peer: o.relay.current.describePeer() } : {}),
      ...(o.relay.lastFailure ? { lastFailure: o.relay.lastFailure } : {}),
      ...o.relay.counters(),
    },
    ...(o.version ? { version: o.version } : {}),
    binding: o.binding,
    udp: o.udp,
    containers: o.watcher?.containers.size ?? 0,
    ports: ports.sort((a, b) => a.key.localeCompare(b.key)),
    ...(o.fds ? { fds: o.fds } : {}),
    ...(o.vm ? { vmListeners: o.vm.state() } : {}),
  };
}
