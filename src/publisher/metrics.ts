/** The daemon's state as Prometheus text (GET /metrics). Pure. */
import type { DaemonState } from "./port-rows.ts";

/** Prometheus label values: backslash, quote and newline escaped. */
const label = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export function metricsText(st: DaemonState): string {
  const out: string[] = [];
  const metric = (name: string, type: "gauge" | "counter", help: string, rows: [string, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of rows) out.push(`${name}${labels} ${v}`);
  };
  const byState = new Map<string, number>([
    ["published", 0],
    ["failed", 0],
    ["conflict", 0],
  ]);
  for (const p of st.ports) byState.set(p.status, (byState.get(p.status) ?? 0) + 1);
  metric(
    "edgeport_ports",
    "gauge",
    "Host ports by state.",
    [...byState].map(([s, n]) => [`{state="${s}"}`, n]),
  );
  metric("edgeport_pipe_up", "gauge", "1 when the pipe to the VM is up.", [["", st.pipe.up ? 1 : 0]]);
  metric("edgeport_engine_connected", "gauge", "1 while the engine's event stream is connected.", [
    ["", st.engine?.connected ? 1 : 0],
  ]);
  const pub = st.ports.filter((p) => p.status === "published");
  const portLabels = (p: (typeof pub)[number]) => `port="${label(p.key)}",source="${p.source.kind}"`;
  metric(
    "edgeport_connections",
    "gauge",
    "Open connections (TCP) or flows (UDP) per port.",
    pub.map((p) => [`{${portLabels(p)}}`, p.connections ?? 0]),
  );
  metric(
    "edgeport_connections_total",
    "counter",
    "Connections (TCP) or flows (UDP) accepted per port.",
    pub.map((p) => [`{${portLabels(p)}}`, p.connectionsTotal ?? 0]),
  );
  metric(
    "edgeport_bytes_total",
    "counter",
    "Bytes relayed per port: in = client to container, out = back.",
    pub.flatMap(
      (p) =>
        [
          [`{${portLabels(p)},direction="in"}`, p.bytesIn ?? 0],
          [`{${portLabels(p)},direction="out"}`, p.bytesOut ?? 0],
        ] as [string, number][],
    ),
  );
  const udp = pub.filter((p) => p.udp);
  metric(
    "edgeport_udp_datagrams_total",
    "counter",
    "UDP datagrams per port: in = client to container, out = back.",
    udp.flatMap(
      (p) =>
        [
          [`{${portLabels(p)},direction="in"}`, p.udp!.datagramsIn],
          [`{${portLabels(p)},direction="out"}`, p.udp!.datagramsOut],
        ] as [string, number][],
    ),
  );
  metric(
    "edgeport_udp_dropped_total",
    "counter",
    "UDP datagrams dropped because their flow could not take them.",
    udp.map((p) => [`{${portLabels(p)}}`, p.udp!.dropped]),
  );
  return `${out.join("\n")}\n`;
}
