/**
 * Issue 20, item 9: GET /metrics is valid Prometheus text (read back by a strict parser), with the
 * families named in docs/operations.md: the open-connections gauge apart from the connections
 * counter, per-port labels proto/address/port/source/container, the engine as a state set that
 * never reads "down" under --engine none, build info, process figures and the pipe's counters.
 */
import { expect, test } from "bun:test";
import { metricsText } from "../../src/publisher/control-api.ts";
import type { DaemonState, PortState } from "../../src/publisher/daemon.ts";
import { portLabels } from "../../src/publisher/metrics.ts";
import { parseExposition } from "../helpers/prometheus.ts";

const port = (o: Partial<PortState>): PortState => ({
  key: "tcp:127.0.0.1:8080",
  id: "c-0123456789ab",
  proto: "tcp",
  host: "127.0.0.1:8080",
  target: "172.17.0.2:80",
  container: "web",
  status: "published",
  source: { kind: "container", containerId: "0123456789abcdef", containerName: "web" },
  connections: 2,
  connectionsTotal: 7,
  bytesIn: 100,
  bytesOut: 2000,
  ...o,
});
const odd = 'we"b\\1\nx';
const state: DaemonState = {
  engine: { url: "unix:///var/run/docker.sock", connected: true },
  pipe: { url: "unix:///tmp/fwd.sock", up: true, reconnects: 2, resets: 1, failures: 5 },
  binding: "local-default",
  udp: { idleMs: 120000, maxFlows: 4096 },
  containers: 1,
  version: "0.1.0+aeb65e9",
  ports: [
    port({}),
    port({
      key: "udp:[::1]:5353",
      proto: "udp",
      host: "[::1]:5353",
      source: { kind: "container", containerName: odd },
      udp: {
        flows: 1,
        flowsOpened: 3,
        flowsExpired: 0,
        flowsEvicted: 0,
        flowsFailed: 0,
        datagramsIn: 10,
        datagramsOut: 9,
        bytesIn: 100,
        bytesOut: 90,
        dropped: 4,
        idleTimeoutMs: 1,
        maxFlows: 1,
      },
    }),
    port({ key: "tcp:127.0.0.1:9000", host: "127.0.0.1:9000", id: "abc", source: { kind: "ad-hoc", persisted: true } }),
    port({ key: "tcp:127.0.0.1:9001", host: "127.0.0.1:9001", status: "failed" }),
  ],
};
const values = (f: { samples: { labels: Record<string, string>; value: number }[] } | undefined) =>
  f?.samples.map((s) => [s.labels, s.value]);

test("every family once, with HELP and TYPE; counters end in _total; label values round-trip escaped", () => {
  const fams = parseExposition(metricsText(state));
  for (const f of fams.values()) {
    expect([f.name, typeof f.help, typeof f.type]).toEqual([f.name, "string", "string"]);
    if (f.type === "counter") expect(f.name).toMatch(/_total$/);
  }
  const udp = fams.get("edgeport_udp_dropped_total")!.samples[0]!;
  expect(udp.labels).toEqual({ proto: "udp", address: "::1", port: "5353", source: "container", container: odd });
});

test("per-port families: the open-connections gauge is not the connections counter's family; proto/address/port/container labels", () => {
  const fams = parseExposition(metricsText(state));
  expect(fams.has("edgeport_connections")).toBe(false);
  const web = { proto: "tcp", address: "127.0.0.1", port: "8080", source: "container", container: "web" };
  const adhoc = { proto: "tcp", address: "127.0.0.1", port: "9000", source: "ad-hoc", container: "" };
  expect(fams.get("edgeport_open_connections")?.type).toBe("gauge");
  expect(values(fams.get("edgeport_open_connections"))).toContainEqual([web, 2]);
  expect(values(fams.get("edgeport_open_connections"))).toContainEqual([adhoc, 2]);
  expect(fams.get("edgeport_connections_total")?.type).toBe("counter");
  expect(values(fams.get("edgeport_connections_total"))).toContainEqual([web, 7]);
  expect(values(fams.get("edgeport_bytes_total"))).toContainEqual([{ ...web, direction: "out" }, 2000]);
  expect(values(fams.get("edgeport_udp_datagrams_total"))).toContainEqual([
    { proto: "udp", address: "::1", port: "5353", source: "container", container: odd, direction: "in" },
    10,
  ]);
  // only published ports have traffic rows; every state is counted
  expect(fams.get("edgeport_open_connections")!.samples).toHaveLength(3);
  expect(values(fams.get("edgeport_ports"))).toEqual([
    [{ state: "published" }, 3],
    [{ state: "failed" }, 1],
    [{ state: "conflict" }, 0],
  ]);
});

test("the engine: a state set; under --engine none it says none and there is no 0 of edgeport_engine_connected", () => {
  const engineState = (st: DaemonState) =>
    Object.fromEntries(
      parseExposition(metricsText(st))
        .get("edgeport_engine_state")!
        .samples.map((s) => [s.labels.state, s.value]),
    );
  expect(engineState(state)).toEqual({ none: 0, connected: 1, down: 0 });
  expect(engineState({ ...state, engine: { url: "x", connected: false } })).toEqual({ none: 0, connected: 0, down: 1 });
  expect(engineState({ ...state, engine: null })).toEqual({ none: 1, connected: 0, down: 0 });
  expect(parseExposition(metricsText({ ...state, engine: null })).has("edgeport_engine_connected")).toBe(false);
  expect(values(parseExposition(metricsText(state)).get("edgeport_engine_connected"))).toEqual([[{}, 1]]);
});

test("build info, the pipe's counters, and the process's own figures", () => {
  const fams = parseExposition(metricsText(state));
  expect(values(fams.get("edgeport_build_info"))).toEqual([
    [{ version: "0.1.0", commit: "aeb65e9", bun: Bun.version }, 1],
  ]);
  expect(values(fams.get("edgeport_pipe_up"))).toEqual([[{}, 1]]);
  expect(values(fams.get("edgeport_pipe_reconnects_total"))).toEqual([[{}, 2]]);
  expect(values(fams.get("edgeport_pipe_resets_total"))).toEqual([[{}, 1]]);
  expect(values(fams.get("edgeport_pipe_dial_failures_total"))).toEqual([[{}, 5]]);
  const one = (name: string) => {
    const f = fams.get(name);
    expect([name, f?.samples.length]).toEqual([name, 1]);
    return f!.samples[0]!.value;
  };
  expect(fams.get("process_cpu_seconds_total")?.type).toBe("counter");
  expect(one("process_cpu_seconds_total")).toBeGreaterThan(0);
  const rss = one("process_resident_memory_bytes");
  expect(Math.abs(rss - process.memoryUsage.rss()) / rss).toBeLessThan(0.5);
  const start = one("process_start_time_seconds");
  expect(Math.abs(start - performance.timeOrigin / 1000)).toBeLessThan(2);
  expect(one("process_open_fds")).toBeGreaterThan(2);
  expect(one("process_max_fds")).toBeGreaterThanOrEqual(one("process_open_fds"));
});

test.each([
  ["HELP twice", "# HELP a x\n# HELP a y\n# TYPE a gauge\na 1\n"],
  ["TYPE after samples", "# HELP a x\na 1\n# TYPE a gauge\n"],
  ["a split family", '# TYPE a gauge\na{x="1"} 1\n# TYPE b gauge\nb 1\na{x="2"} 1\n'],
  ["a bad escape", '# TYPE a gauge\na{x="\\t"} 1\n'],
  ["a duplicate series", '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n'],
  ["a value that is not a number", "# TYPE a gauge\na one\n"],
  ["no final newline", "# TYPE a gauge\na 1"],
])("the test's parser rejects %s", (_, text) => {
  expect(() => parseExposition(text)).toThrow();
});

test("a socket forward's labels: address is its host socket's URL, port is empty (not split at a colon of the URL)", () => {
  const row = {
    key: "unix:/run/u/docker.sock",
    id: "abc",
    proto: "unix",
    source: { kind: "ad-hoc" },
    host: "unix:///run/u/docker.sock",
    target: "unix:///var/run/docker.sock",
    container: "",
    status: "published",
  } as PortState;
  expect(portLabels(row)).toEqual({
    proto: "unix",
    address: "unix:///run/u/docker.sock",
    port: "",
    source: "ad-hoc",
    container: "",
  });
});
