/** An injected listener factory for the daemon's unit tests: records what was opened, fails on demand. */
import type { OpenListener } from "../../src/publisher/port-table.ts";
import type { UdpStats } from "../../src/publisher/udp-listener.ts";
import type { PortMapping } from "../../src/shared/port-spec.ts";

export interface FakeListener {
  mapping: PortMapping;
  closed: boolean;
  retargets: PortMapping[];
}

const udpStats: UdpStats = {
  flows: 2,
  flowsOpened: 5,
  flowsExpired: 1,
  flowsEvicted: 0,
  flowsFailed: 0,
  datagramsIn: 10,
  datagramsOut: 9,
  bytesIn: 100,
  bytesOut: 90,
  dropped: 0,
  idleTimeoutMs: 120000,
  maxFlows: 4096,
};

export function fakeListeners() {
  const opened: FakeListener[] = [];
  /** mapping "proto hostIp:hostPort" -> the error its bind fails with */
  const failing = new Map<string, Error>();
  const keyOf = (m: PortMapping) => `${m.proto} ${m.hostIp}:${m.hostPort}`;
  const open: OpenListener = (m) => {
    const err = failing.get(keyOf(m));
    if (err && m.proto === "tcp") throw err;
    const f: FakeListener = { mapping: m, closed: false, retargets: [] };
    opened.push(f);
    const common = {
      mapping: m,
      port: m.hostPort,
      retarget(next: PortMapping) {
        f.retargets.push(next);
        f.mapping = next;
        (this as { mapping: PortMapping }).mapping = next;
      },
      async close() {
        f.closed = true;
      },
    };
    if (m.proto === "udp") {
      // a real UDP listener closes its socket itself when the bind fails
      const ready = err ? Promise.reject(err) : Promise.resolve();
      ready.catch(() => (f.closed = true));
      return Object.assign(common, { kind: "udp" as const, ready, connections: 2, stats: () => udpStats });
    }
    return Object.assign(common, {
      kind: "tcp" as const,
      connections: 1,
      stats: () => ({ connectionsTotal: 3, bytesIn: 30, bytesOut: 40 }),
    });
  };
  const live = () => opened.filter((f) => !f.closed);
  return { open, opened, live, failing, keyOf, udpStats };
}
