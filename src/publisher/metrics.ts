/**
 * The daemon's state as Prometheus text (GET /metrics), text exposition format 0.0.4: each family
 * once with its HELP and TYPE, label values escaped. formatMetrics is pure; metricsText adds the
 * process's own figures. The families are listed in docs/operations.md.
 */
import type { DaemonState, PortState } from "./port-rows.ts";
import { type ProcessStats, processStats } from "./process-stats.ts";

/** Prometheus label values: backslash, quote and newline escaped. */
export const escapeLabel = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

type Labels = Record<string, string>;
type Sample = [Labels, number];

const labelText = (l: Labels) => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
};
/** HELP text: backslash and newline escaped */
const helpText = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/**
 * A published port's labels: where it listens, and whose it is (container: "" when not a container's).
 * A socket forward's address is its host socket's URL, its port "".
 */
export function portLabels(p: PortState): Labels {
  const i = p.proto === "unix" ? -1 : p.host.lastIndexOf(":");
  const address = (i < 0 ? p.host : p.host.slice(0, i)).replace(/^\[(.*)\]$/, "$1");
  return {
    proto: p.proto,
    address,
    port: i < 0 ? "" : p.host.slice(i + 1),
    source: p.source.kind,
    container: p.source.kind === "container" ? (p.source.containerName ?? "") : "",
  };
}

/** The engine as a state set: "none" (--engine none), "connected", or "down". */
const engineState = (st: DaemonState) => (st.engine === null ? "none" : st.engine.connected ? "connected" : "down");

/** version "0.1.0+aeb65e9" -> version 0.1.0, commit aeb65e9 */
function buildLabels(version: string | undefined, bun: string): Labels {
  const [v, commit] = (version ?? "unknown").split("+");
  return { version: v!, ...(commit ? { commit } : {}), bun };
}

function portFamilies(st: DaemonState, family: (n: string, t: string, h: string, s: Sample[]) => void): void {
  const pub = st.ports.filter((p) => p.status === "published");
  const dirs = (p: PortState, i: number | undefined, o: number | undefined): Sample[] => [
    [{ ...portLabels(p), direction: "in" }, i ?? 0],
    [{ ...portLabels(p), direction: "out" }, o ?? 0],
  ];
  family(
    "edgeport_open_connections",
    "gauge",
    "Open connections (TCP) or flows (UDP) per port.",
    pub.map((p) => [portLabels(p), p.connections ?? 0]),
  );
  family(
    "edgeport_connections_total",
    "counter",
    "Connections (TCP) or flows (UDP) accepted per port.",
    pub.map((p) => [portLabels(p), p.connectionsTotal ?? 0]),
  );
  family(
    "edgeport_bytes_total",
    "counter",
    "Bytes relayed per port: in = client to container, out = back.",
    pub.flatMap((p) => dirs(p, p.bytesIn, p.bytesOut)),
  );
  const udp = pub.filter((p) => p.udp);
  family(
    "edgeport_udp_datagrams_total",
    "counter",
    "UDP datagrams per port: in = client to container, out = back.",
    udp.flatMap((p) => dirs(p, p.udp!.datagramsIn, p.udp!.datagramsOut)),
  );
  family(
    "edgeport_udp_dropped_total",
    "counter",
    "UDP datagrams dropped because their flow could not take them.",
    udp.map((p) => [portLabels(p), p.udp!.dropped]),
  );
}

function processFamilies(ps: ProcessStats, family: (n: string, t: string, h: string, s: Sample[]) => void): void {
  family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", [
    [{}, ps.cpuSeconds],
  ]);
  family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [[{}, ps.residentBytes]]);
  family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", [
    [{}, ps.startTimeSeconds],
  ]);
  if (ps.openFds !== undefined)
    family("process_open_fds", "gauge", "Number of open file descriptors.", [[{}, ps.openFds]]);
  if (ps.maxFds !== undefined)
    family("process_max_fds", "gauge", "Maximum number of open file descriptors.", [[{}, ps.maxFds]]);
}

/** The exposition text of a state (and the process's figures when given). Pure. */
export function formatMetrics(st: DaemonState, o: { bun: string; process?: ProcessStats }): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string, samples: Sample[]) => {
    out.push(`# HELP ${name} ${helpText(help)}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) out.push(`${name}${labelText(labels)} ${v}`);
  };
  family("edgeport_build_info", "gauge", "The running edgeport's version, commit and Bun runtime; always 1.", [
    [buildLabels(st.version, o.bun), 1],
  ]);
  const byState = new Map<string, number>([
    ["published", 0],
    ["failed", 0],
    ["conflict", 0],
  ]);
  for (const p of st.ports) byState.set(p.status, (byState.get(p.status) ?? 0) + 1);
  family(
    "edgeport_ports",
    "gauge",
    "Host ports by state.",
    [...byState].map(([state, n]) => [{ state }, n]),
  );
  family("edgeport_pipe_up", "gauge", "1 when the pipe to the VM is up.", [[{}, st.pipe.up ? 1 : 0]]);
  family("edgeport_pipe_reconnects_total", "counter", "Times the pipe came up again after it was lost or down.", [
    [{}, st.pipe.reconnects ?? 0],
  ]);
  family(
    "edgeport_pipe_resets_total",
    "counter",
    "Pipe sessions that ended abnormally: the peer went away, a keepalive timed out, an error.",
    [[{}, st.pipe.resets ?? 0]],
  );
  family("edgeport_pipe_dial_failures_total", "counter", "Dials or handshakes of the pipe that failed.", [
    [{}, st.pipe.failures ?? 0],
  ]);
  const engine = engineState(st);
  family(
    "edgeport_engine_state",
    "gauge",
    'The engine\'s event stream: 1 for the current state; "none" when no engine is followed (--engine none).',
    ["none", "connected", "down"].map((state) => [{ state }, state === engine ? 1 : 0]),
  );
  if (st.engine)
    family(
      "edgeport_engine_connected",
      "gauge",
      "1 while the engine's event stream is connected (absent with --engine none).",
      [[{}, st.engine.connected ? 1 : 0]],
    );
  portFamilies(st, family);
  if (o.process) processFamilies(o.process, family);
  return `${out.join("\n")}\n`;
}

/** GET /metrics: the state, and the process's own figures read now. */
export const metricsText = (st: DaemonState): string =>
  formatMetrics(st, { bun: Bun.version, process: processStats() });
