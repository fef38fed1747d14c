import { describe, expect, test } from "bun:test";
import { lsFilter, lsRows } from "../../src/cli/ls-rows.ts";
import type { PortState } from "../../src/publisher/daemon.ts";

const port = (host: string, target: string, o: Partial<PortState> = {}): PortState => ({
  key: `tcp:${host}`,
  host,
  target,
  container: "web",
  status: "published",
  source: { kind: "container", containerId: "0123456789abcdef", containerName: "web" },
  id: "c-0123456789ab",
  proto: "tcp",
  connections: 1,
  connectionsTotal: 2,
  bytesIn: 10,
  bytesOut: 20,
  ...o,
});

describe("ls rows", () => {
  test("both loopbacks and consecutive ports of one id share a row; traffic adds up; rows sort by port number", () => {
    const rows = lsRows([
      port("[::1]:10000", "172.17.0.2:80"),
      port("127.0.0.1:10000", "172.17.0.2:80"),
      port("127.0.0.1:9000", "172.17.0.2:90"),
      port("127.0.0.1:9001", "172.17.0.2:91"),
      port("127.0.0.1:9003", "172.17.0.2:93"),
      port("127.0.0.1:80", "172.17.0.3:80", { id: "abc", source: { kind: "ad-hoc" }, status: "failed", error: "x" }),
    ]);
    expect(rows.map((r) => [r.ports, r.container, r.connections])).toEqual([
      ["127.0.0.1:80->172.17.0.3:80/tcp", "", 1],
      ["127.0.0.1:9000-9001->172.17.0.2:90-91/tcp", "web", 2],
      ["127.0.0.1:9003->172.17.0.2:93/tcp", "web", 1],
      ["127.0.0.1,[::1]:10000->172.17.0.2:80/tcp", "web", 2],
    ]);
    expect(rows[3]!.bytesOut).toBe(40);
    expect(rows[0]).toMatchObject({ status: "failed", error: "x", source: "ad-hoc" });
  });

  test("--filter container=NAME keeps that container's rows (by name or id prefix); other filters are refused", () => {
    const rows = lsRows([
      port("127.0.0.1:1", "172.17.0.2:1"),
      port("127.0.0.1:2", "172.17.0.3:1", {
        id: "c-fedcba987654",
        source: { kind: "container", containerId: "fedcba9876543210", containerName: "db" },
      }),
    ]);
    expect(rows.filter(lsFilter(["container=db"])).map((r) => r.hostPort)).toEqual([2]);
    expect(rows.filter(lsFilter(["container=0123"])).map((r) => r.hostPort)).toEqual([1]);
    expect(rows.filter(lsFilter([])).length).toBe(2);
    expect(() => lsFilter(["status=up"])).toThrow(/not container=NAME/);
  });
});
