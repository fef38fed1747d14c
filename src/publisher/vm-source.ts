/**
 * The second source beside the engine: what listens in the VM itself, as the forwarder reports it
 * (`edgeport forwarder --report-listeners`, the `listeners` extension). Each reported port becomes
 * wanted ports on the host's 127.0.0.1 and ::1 at the same port, fed to the same plan and port
 * table as the containers'. The rules of `[vm-listeners]` apply here, on the host, and a port any
 * other source wants (a container, an ad-hoc entry, dockerd's proxy) stays theirs. What the host
 * publishes is told back to the forwarder (allow lines), which dials exactly those on the VM's
 * loopback and nothing else there.
 */
import type { ConsolaInstance } from "consola";
import { portKey, type WantedPort } from "../events/wanted.ts";
import {
  decodeReport,
  encodeAllow,
  idKey,
  type ListenerId,
  MAX_LISTENER_LINE,
  MAX_REPORTED,
  targetOf,
  type VmListener,
} from "../relay/control/listeners.ts";
import { createLineSplitter } from "../relay/control/protocol.ts";
import type { Channel, Endpoint } from "../relay/mux/channel.ts";
import { OPEN_FORBIDDEN } from "../relay/mux/constants.ts";
import type { Session } from "../relay/mux/session.ts";
import type { VmListenerRules } from "../shared/config-vm-listeners.ts";
import { safe } from "../shared/log.ts";

const VM = "vm:";

/** One reported listener as the state shows it: published (then a row of its own), or why not. */
export interface VmListenerState {
  proto: "tcp" | "udp";
  /** the VM address it listens on */
  address: string;
  port: number;
  process?: string;
  status: "wanted" | "ignored" | "taken";
  reason?: string;
}

/** The VM listener a wanted port stands for (its process name), or null for another source's. */
export const vmProcessOf = (w: WantedPort): string | null => (w.containerId.startsWith(VM) ? w.containerName : null);
/** The source of a VM listener's row, or null for another source's. */
export const vmSourceOf = (w: WantedPort): { kind: "vm"; process: string } | null =>
  w.containerId.startsWith(VM) ? { kind: "vm", process: w.containerName } : null;
/** The id of a VM listener's row: `vm-tcp-5173`. */
export const vmIdOf = (w: WantedPort): string | null =>
  w.containerId.startsWith(VM) ? `vm-${w.proto}-${w.hostPort}` : null;

/** The listener a port is dialled through: the wildcard first, then loopback, then the lowest address. */
const RANK = ["0.0.0.0", "::", "127.0.0.1", "::1"];
const rank = (l: VmListener) => (RANK.includes(l.ip) ? RANK.indexOf(l.ip) : RANK.length);

export interface VmSource {
  /** the channel the forwarder opened to LISTENERS_DEST */
  accept(s: Session, ch: Channel): void;
  /** the wanted ports of the VM's listeners, leaving out ports that `others` want */
  wants(others: readonly WantedPort[]): WantedPort[];
  state(): VmListenerState[];
  /** called when the reported listeners changed */
  onChange(f: () => void): void;
}

/** Listeners grouped by proto and port: one host port each. */
function byPort(listeners: Iterable<VmListener>): Map<string, VmListener[]> {
  const groups = new Map<string, VmListener[]>();
  for (const l of listeners) {
    const k = `${l.proto}/${l.port}`;
    (groups.get(k) ?? groups.set(k, []).get(k)!).push(l);
  }
  return groups;
}

/** What the VM's listeners want of the host, why the others are left alone, and where the forwarder dials. Pure. */
export function vmWants(
  listeners: Iterable<VmListener>,
  others: readonly WantedPort[],
  rules: Pick<VmListenerRules, "ignored">,
): { wants: WantedPort[]; verdicts: VmListenerState[]; targets: string[] } {
  const taken = new Map(others.map((w) => [`${w.proto}/${w.hostPort}`, w]));
  const wants: WantedPort[] = [];
  const verdicts: VmListenerState[] = [];
  const targets = new Set<string>();
  for (const [k, group] of byPort(listeners)) {
    group.sort((a, b) => rank(a) - rank(b) || a.ip.localeCompare(b.ip));
    const l = group[0]!;
    const holder = taken.get(k);
    const why = holder
      ? `host port ${l.port} is published for ${holder.containerName}`
      : rules.ignored(l.port, l.process);
    for (const g of group)
      verdicts.push({
        proto: g.proto,
        address: g.ip,
        port: g.port,
        ...(g.process ? { process: g.process } : {}),
        status: why ? (holder ? "taken" : "ignored") : "wanted",
        ...(why ? { reason: why } : {}),
      });
    if (why) continue;
    const t: ListenerId = targetOf(l);
    targets.add(idKey(t));
    for (const hostIp of ["127.0.0.1", "::1"])
      wants.push({
        key: portKey(l.proto, hostIp, l.port),
        hostIp,
        hostPort: l.port,
        proto: l.proto,
        targetIp: t.ip,
        targetPort: t.port,
        containerId: `${VM}${l.proto}:${l.port}`,
        containerName: l.process ?? "(vm)",
      });
  }
  return { wants, verdicts, targets: [...targets].sort() };
}

interface Reporter {
  ch: Channel;
  listeners: Map<string, VmListener>;
  /** the last allow line sent */
  sent: string;
}

/** The host's end of one report channel: lines in, the reporter's picture kept, `changed` after each batch. */
function reportEndpoint(mine: Reporter, log: ConsolaInstance, changed: () => void, ended: () => void): Endpoint {
  const lines = createLineSplitter(MAX_LISTENER_LINE);
  let warned = false;
  const apply = (line: string) => {
    const r = decodeReport(line);
    if (r.full) mine.listeners.clear();
    for (const l of r.remove) mine.listeners.delete(idKey(l));
    for (const l of r.add) {
      // the VM is not trusted: a bounded picture, and process names fit for a log line
      if (mine.listeners.size >= MAX_REPORTED && !mine.listeners.has(idKey(l))) {
        if (!warned) log.warn(`the forwarder reports more than ${MAX_REPORTED} listeners; the rest are left out`);
        warned = true;
        continue;
      }
      mine.listeners.set(idKey(l), l.process === undefined ? l : { ...l, process: safe(l.process, 64) });
    }
  };
  return {
    write(data) {
      const { lines: got, overflow } = lines.push(data);
      if (overflow) log.warn(`the forwarder sent a listeners line over ${MAX_LISTENER_LINE} bytes; dropped`);
      for (const line of got) {
        try {
          apply(line);
        } catch (e) {
          log.warn(`listeners channel: ${safe((e as Error).message, 200)}`);
        }
      }
      if (got.length) changed();
      return data.length;
    },
    shutdown() {
      ended();
      mine.ch.localEnd();
    },
    close: ended,
    reset: ended,
    pause() {},
    resume() {},
  };
}

export function createVmSource(rules: VmListenerRules, log: ConsolaInstance): VmSource {
  let current: Reporter | null = null;
  let changed = () => {};
  let verdicts: VmListenerState[] = [];

  /** The allow line goes out before the host binds anything, so the forwarder knows first. */
  function tell(targets: string[]): void {
    const line = encodeAllow(targets);
    if (!current || current.sent === line) return;
    current.sent = line;
    current.ch.localData(new TextEncoder().encode(line));
  }

  function accept(s: Session, ch: Channel): void {
    if (!rules.enabled) {
      log.info("the forwarder reports its listeners; not published ([vm-listeners] enabled = false)");
      s.reject(ch, OPEN_FORBIDDEN, "the host does not publish VM listeners ([vm-listeners] enabled = false)");
      return;
    }
    const mine: Reporter = { ch, listeners: new Map(), sent: "" };
    current = mine;
    const ifCurrent = (f: () => void) => () => current === mine && f();
    const ended = ifCurrent(() => {
      current = null;
      changed();
    });
    s.accept(
      ch,
      reportEndpoint(
        mine,
        log,
        ifCurrent(() => changed()),
        ended,
      ),
    );
    log.info("the forwarder reports its listeners: publishing them on 127.0.0.1 and ::1");
  }

  return {
    accept,
    wants(others) {
      const r = vmWants(current?.listeners.values() ?? [], others, rules);
      verdicts = r.verdicts;
      tell(r.targets);
      return r.wants;
    },
    state: () => verdicts,
    onChange(f) {
      changed = f;
    },
  };
}
