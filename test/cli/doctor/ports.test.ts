import { describe, expect, test } from "bun:test";
import { portChecks, portsToExplain } from "../../../src/cli/doctor/ports.ts";
import { ContainerInspect } from "../../../src/events/schemas.ts";
import type { PortState } from "../../../src/publisher/daemon.ts";
import { portRules } from "../../../src/shared/config.ts";

const ID = "c0ffee0000000000000000000000000000000000000000000000000000000001";
/** a running container publishing HostIp:HostPort -> 80/tcp, trimmed as dockerd 20.10 answers */
function container(
  hostIp: string,
  hostPort: number,
  o: { name?: string; id?: string; labels?: Record<string, string> } = {},
) {
  return ContainerInspect.parse({
    Id: o.id ?? ID,
    Name: `/${o.name ?? "web"}`,
    State: { Running: true, StartedAt: "2026-11-22T16:02:55Z" },
    Config: { Labels: o.labels ?? {} },
    HostConfig: {
      PortBindings: { "80/tcp": [{ HostIp: hostIp === "0.0.0.0" ? "" : hostIp, HostPort: String(hostPort) }] },
    },
    NetworkSettings: {
      Ports: { "80/tcp": [{ HostIp: hostIp, HostPort: String(hostPort) }] },
      Networks: { bridge: { IPAddress: "172.17.0.2" } },
    },
  });
}
const row = (key: string, status: PortState["status"], extra: Partial<PortState> = {}): PortState => ({
  key,
  host: key.slice(4),
  target: "172.17.0.2:80",
  container: "web",
  status,
  source: { kind: "container", containerId: ID, containerName: "web" },
  id: `c-${ID.slice(0, 12)}`,
  proto: "tcp",
  ...extra,
});
const base = {
  binding: "local-default" as const,
  rules: portRules({}),
  owners: new Map(),
  platform: "linux",
  uid: 0,
};
const one = (f: Partial<Parameters<typeof portChecks>[0]>) =>
  portChecks({ ...base, containers: [], daemon: null, ...f });

describe("port lines", () => {
  test("published: pass, and the binding policy's loopback note for an unspecified address", () => {
    const [v4, v6] = one({
      containers: [container("0.0.0.0", 8080)],
      daemon: {
        engineConnected: true,
        ports: [row("tcp:127.0.0.1:8080", "published"), row("tcp:[::1]:8080", "published")],
      },
    });
    expect(v4).toMatchObject({ id: "tcp:127.0.0.1:8080", verdict: "pass", port: 8080 });
    expect(v4!.detail).toContain("loopback only (--binding local-default");
    expect(v6).toMatchObject({ id: "tcp:[::1]:8080", verdict: "pass" });
  });

  test("a bind that failed because another process holds the port names its pid and program", () => {
    const [line] = one({
      containers: [container("127.0.0.1", 8080)],
      daemon: {
        engineConnected: true,
        ports: [
          row("tcp:127.0.0.1:8080", "failed", {
            code: "E_PORT_IN_USE",
            error: "cannot listen on 127.0.0.1:8080: the address is already in use",
          }),
        ],
      },
      owners: new Map([
        ["tcp:127.0.0.1:8080", [{ pid: 4242, program: "nginx", uid: 0, address: "0.0.0.0", port: 8080 }]],
      ]),
    });
    expect(line).toMatchObject({ verdict: "fail", code: "E_PORT_IN_USE" });
    expect(line!.detail).toContain("held by pid 4242 (nginx), uid 0 on 0.0.0.0:8080");
    expect(line!.fix).toContain("stop pid 4242 (nginx)");
  });

  test("a holder on another address of the same port does not count", () => {
    const [line] = one({
      containers: [container("127.0.0.1", 8080)],
      owners: new Map([["tcp:127.0.0.1:8080", [{ pid: 1, program: "x", address: "10.0.0.5", port: 8080 }]]]),
    });
    expect(line!.detail).not.toContain("held by");
  });

  test("a conflict names the container that has the port", () => {
    const other = { kind: "container" as const, containerId: "beef", containerName: "first" };
    const [line] = one({
      containers: [container("127.0.0.1", 8080)],
      daemon: {
        engineConnected: true,
        ports: [
          row("tcp:127.0.0.1:8080", "published", { source: other, container: "first" }),
          row("tcp:127.0.0.1:8080", "conflict", { error: "already published for container first" }),
        ],
      },
    });
    expect(line).toMatchObject({ verdict: "fail", code: "E_CONFLICT" });
    expect(line!.detail).toContain("already published for container first");
  });

  test("ignored by a rule: skip (not a failure); reserved: warn", () => {
    const rules = portRules({ ignore: { containers: ["web"] }, reserved: [22, 9000] });
    const [ignored] = one({ containers: [container("127.0.0.1", 8080)], rules });
    expect(ignored).toMatchObject({ verdict: "skip" });
    expect(ignored!.detail).toContain('ignore.containers "web"');
    const [reserved] = one({ containers: [container("127.0.0.1", 9000, { name: "api" })], rules });
    expect(reserved).toMatchObject({ verdict: "warn" });
    expect(reserved!.detail).toContain("port 9000 is reserved");
  });

  test.each([
    [null, "no edgeport daemon runs"],
    [{ engineConnected: false, ports: [] }, "the daemon does not follow the engine now"],
    [{ engineConnected: true, ports: [] }, "the daemon has not seen it"],
  ])("not in the daemon's state (%#): says why", (daemon, why) => {
    const [line] = one({ containers: [container("127.0.0.1", 8080)], daemon });
    expect(line).toMatchObject({ verdict: "fail" });
    expect(line!.detail).toContain(why);
  });

  test("Windows: a port in an excluded range says which range", () => {
    const [line] = one({
      platform: "win32",
      containers: [container("127.0.0.1", 50010)],
      daemon: {
        engineConnected: true,
        ports: [row("tcp:127.0.0.1:50010", "failed", { code: "E_PERMISSION", error: "permission denied" })],
      },
      excluded: { tcp: [{ start: 50000, end: 50059, administered: true }], udp: [] },
    });
    expect(line!.detail).toContain("excluded port range 50000-50059 (administered)");
    expect(line!.fix).toContain("winnat");
  });

  test.each([
    ["darwin", 501, "127.0.0.1", 80, true],
    ["darwin", 0, "127.0.0.1", 80, false],
    ["darwin", 501, "127.0.0.1", 8080, false],
    ["linux", 1000, "127.0.0.1", 80, false],
  ])("macOS below 1024 on a specific address (%s uid %d %s:%d): %p", (platform, uid, ip, port, said) => {
    const [line] = one({ platform, uid, containers: [container(ip, port)] });
    expect(line!.detail.includes("below 1024 only on 0.0.0.0 or ::")).toBe(said);
  });

  test("the engine did not answer: the daemon's rows are shown as they are", () => {
    const lines = one({
      containers: null,
      daemon: { engineConnected: false, ports: [row("tcp:127.0.0.1:8080", "published")] },
    });
    expect(lines).toMatchObject([{ id: "tcp:127.0.0.1:8080", verdict: "pass" }]);
  });

  test("ports to explain: those the daemon does not hold", () => {
    const containers = [container("127.0.0.1", 8080), container("127.0.0.1", 8081, { id: "b".repeat(64), name: "b" })];
    const daemon = { engineConnected: true, ports: [row("tcp:127.0.0.1:8080", "published")] };
    expect(portsToExplain({ containers, binding: "local-default", daemon }).map((w) => w.key)).toEqual([
      "tcp:127.0.0.1:8081",
    ]);
  });
});
