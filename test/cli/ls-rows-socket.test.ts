import { expect, test } from "bun:test";
import { lsRows } from "../../src/cli/ls-rows.ts";
import type { PortState } from "../../src/publisher/daemon.ts";

const sock = (h: string, v: string, id: string): PortState => ({
  key: `unix:${h}`,
  host: `unix://${h}`,
  target: `unix://${v}`,
  container: "(ad-hoc)",
  status: "published",
  source: { kind: "ad-hoc" },
  id,
  proto: "unix",
  connections: 2,
  connectionsTotal: 5,
  bytesIn: 7,
  bytesOut: 9,
});

test("a socket forward is a row of its own, never merged with a port or another forward; they sort first", () => {
  const rows = lsRows([
    {
      ...sock("/x", "/y", "p"),
      key: "tcp:127.0.0.1:80",
      host: "127.0.0.1:80",
      target: "172.17.0.2:80",
      proto: "tcp",
    },
    sock("/run/user/1000/b.sock", "/var/run/b.sock", "bbb"),
    sock("/run/user/1000/a.sock", "/var/run/docker.sock", "aaa"),
  ]);
  expect(rows.map((r) => [r.ports, r.proto, r.connections])).toEqual([
    ["unix:///run/user/1000/a.sock->unix:///var/run/docker.sock", "unix", 2],
    ["unix:///run/user/1000/b.sock->unix:///var/run/b.sock", "unix", 2],
    ["127.0.0.1:80->172.17.0.2:80/tcp", "tcp", 2],
  ]);
  expect(rows[0]).toMatchObject({ id: "aaa", hostPort: 0, bytesIn: 7, bytesOut: 9 });
});
