import { describe, expect, test } from "bun:test";
import { ContainerInspect } from "../../src/events/schemas.ts";
import { type BindingPolicy, proxyProtocolPorts, wantedPorts } from "../../src/events/wanted.ts";

/** Shapes as dockerd 20.10 returns them (captured in the test bed), trimmed. */
function inspect(o: {
  ports?: object;
  bindings?: object;
  publishAll?: boolean;
  ip?: string;
  ip6?: string;
  running?: boolean;
  mode?: string;
  labels?: Record<string, string>;
}) {
  return ContainerInspect.parse({
    ...(o.labels ? { Config: { Labels: o.labels } } : {}),
    Id: "c0ffee0000000000000000000000000000000000000000000000000000000001",
    Name: "/web",
    State: {
      Running: o.running ?? true,
      Paused: false,
      StartedAt: "2026-11-22T16:02:55.842314637Z",
      Pid: 42,
      ExtraField: "stripped",
    },
    HostConfig: {
      NetworkMode: o.mode ?? "default",
      PortBindings: o.bindings ?? {},
      PublishAllPorts: o.publishAll ?? false,
    },
    NetworkSettings: {
      Ports: o.ports ?? {},
      Networks: { bridge: { IPAddress: o.ip ?? "172.17.0.2", GlobalIPv6Address: o.ip6 ?? "", NetworkID: "cc66" } },
    },
  });
}
const hp = (HostIp: string, HostPort: string) => ({ HostIp, HostPort });
const keys = (policy: BindingPolicy, c: ReturnType<typeof inspect>) =>
  wantedPorts(c, policy).ports.map((p) => `${p.key} -> ${p.targetIp}:${p.targetPort}`);

describe("wanted ports from the inspect JSON", () => {
  const dashP = inspect({
    bindings: { "80/tcp": [hp("", "8080")] },
    ports: { "80/tcp": [hp("0.0.0.0", "8080"), hp("::", "8080")] },
  });
  const explicitAll = inspect({
    bindings: { "80/tcp": [hp("0.0.0.0", "8080")] },
    ports: { "80/tcp": [hp("0.0.0.0", "8080")] },
  });
  const explicitLo = inspect({
    bindings: { "81/tcp": [hp("127.0.0.1", "8081")] },
    ports: { "81/tcp": [hp("127.0.0.1", "8081")] },
  });
  const lan = inspect({
    bindings: { "80/tcp": [hp("192.168.1.5", "80")] },
    ports: { "80/tcp": [hp("192.168.1.5", "80")] },
  });
  const publishAll = inspect({ publishAll: true, ports: { "5000/tcp": [hp("0.0.0.0", "32768")] } });
  const v6 = inspect({ bindings: { "443/tcp": [hp("::1", "8443")] }, ports: { "443/tcp": [hp("::1", "8443")] } });

  test.each([
    ["-p 8080:80", "open", dashP, ["tcp:0.0.0.0:8080 -> 172.17.0.2:80", "tcp:[::]:8080 -> 172.17.0.2:80"]],
    ["-p 8080:80", "local-default", dashP, ["tcp:127.0.0.1:8080 -> 172.17.0.2:80", "tcp:[::1]:8080 -> 172.17.0.2:80"]],
    ["-p 8080:80", "local-only", dashP, ["tcp:127.0.0.1:8080 -> 172.17.0.2:80", "tcp:[::1]:8080 -> 172.17.0.2:80"]],
    ["-p 0.0.0.0:8080:80 (explicit)", "local-default", explicitAll, ["tcp:0.0.0.0:8080 -> 172.17.0.2:80"]],
    ["-p 0.0.0.0:8080:80 (explicit)", "open", explicitAll, ["tcp:0.0.0.0:8080 -> 172.17.0.2:80"]],
    ["-p 0.0.0.0:8080:80 (explicit)", "local-only", explicitAll, ["tcp:127.0.0.1:8080 -> 172.17.0.2:80"]],
    ["-p 127.0.0.1:8081:81", "open", explicitLo, ["tcp:127.0.0.1:8081 -> 172.17.0.2:81"]],
    ["-p 192.168.1.5:80:80", "local-default", lan, ["tcp:192.168.1.5:80 -> 172.17.0.2:80"]],
    ["-p 192.168.1.5:80:80", "local-only", lan, ["tcp:127.0.0.1:80 -> 172.17.0.2:80"]],
    [
      "-P (random host port)",
      "local-default",
      publishAll,
      ["tcp:127.0.0.1:32768 -> 172.17.0.2:5000", "tcp:[::1]:32768 -> 172.17.0.2:5000"],
    ],
    [
      "-P (random host port)",
      "open",
      publishAll,
      ["tcp:0.0.0.0:32768 -> 172.17.0.2:5000", "tcp:[::]:32768 -> 172.17.0.2:5000"],
    ],
    ["-p [::1]:8443:443", "local-default", v6, ["tcp:[::1]:8443 -> 172.17.0.2:443"]],
    [
      "-p 80 (random host port for 80)",
      "local-default",
      inspect({
        bindings: { "80/tcp": [hp("", "")] },
        ports: { "80/tcp": [hp("0.0.0.0", "49153"), hp("::", "49153")] },
      }),
      ["tcp:127.0.0.1:49153 -> 172.17.0.2:80", "tcp:[::1]:49153 -> 172.17.0.2:80"],
    ],
    [
      "-p [::ffff:127.0.0.1]:8080:80 (mapped form canonicalised)",
      "local-only",
      inspect({
        bindings: { "80/tcp": [hp("::ffff:127.0.0.1", "8080")] },
        ports: { "80/tcp": [hp("::ffff:127.0.0.1", "8080")] },
      }),
      ["tcp:127.0.0.1:8080 -> 172.17.0.2:80"],
    ],
    [
      "-p [::]:8080:80 (explicit all IPv6)",
      "local-default",
      inspect({ bindings: { "80/tcp": [hp("::", "8080")] }, ports: { "80/tcp": [hp("::", "8080")] } }),
      ["tcp:[::]:8080 -> 172.17.0.2:80"],
    ],
  ])("%s with --binding %s", (_name, policy, c, want) => {
    expect(keys(policy as BindingPolicy, c)).toEqual(want);
  });

  test("local-only names the address it narrowed", () => {
    expect(wantedPorts(lan, "local-only").warnings).toEqual([
      "container web: 80/tcp asks for 192.168.1.5:80; --binding local-only publishes it on 127.0.0.1 instead",
    ]);
    expect(wantedPorts(lan, "local-default").warnings).toEqual([]);
  });

  test("label edgeport.proxy-protocol: the TCP ports it names get the PROXY header, and a bad value applies nothing and says why", () => {
    const ports = {
      "80/tcp": [hp("0.0.0.0", "8080")],
      "443/tcp": [hp("0.0.0.0", "8443")],
      "53/udp": [hp("0.0.0.0", "5353")],
    };
    const bindings = { "80/tcp": [hp("", "8080")], "443/tcp": [hp("", "8443")], "53/udp": [hp("", "5353")] };
    const proxied = (labels?: Record<string, string>) => {
      const w = wantedPorts(inspect({ ports, bindings, labels }), "local-default");
      return { on: w.ports.filter((p) => p.proxyProtocol).map((p) => p.key), warnings: w.warnings };
    };
    expect(proxied()).toEqual({ on: [], warnings: [] });
    expect(proxied({ "edgeport.proxy-protocol": "443" })).toEqual({
      on: ["tcp:127.0.0.1:8443", "tcp:[::1]:8443"],
      warnings: [],
    });
    expect(proxied({ "edgeport.proxy-protocol": "true" }).on).toEqual([
      "tcp:127.0.0.1:8080",
      "tcp:[::1]:8080",
      "tcp:127.0.0.1:8443",
      "tcp:[::1]:8443",
    ]);
    expect(proxied({ "edgeport.proxy-protocol": " 80/tcp, 443 " }).on.length).toBe(4);
    const typo = proxied({ "edgeport.proxy-protocol": "80,44x" });
    expect(typo.on).toEqual([]);
    expect(typo.warnings).toEqual([
      'container web: label edgeport.proxy-protocol="80,44x": "44x" is not a container port (write "true", or ports like "80,443"); no port gets the PROXY header',
    ]);
    expect(proxied({ "edgeport.proxy-protocol": "53/udp" }).warnings[0]).toContain(
      "the PROXY protocol is for TCP only",
    );
    expect(proxyProtocolPorts("0").problem).toContain('"0" is not a container port');
    expect(proxyProtocolPorts("false").has(80)).toBe(false);
    // `docker run -l edgeport.proxy-protocol` (no value) means on
    expect(proxyProtocolPorts("").has(80)).toBe(true);
  });

  test("udp ports are carried in the model", () => {
    const c = inspect({ bindings: { "53/udp": [hp("", "5353")] }, ports: { "53/udp": [hp("0.0.0.0", "5353")] } });
    expect(wantedPorts(c, "local-default").ports.map((p) => [p.proto, p.hostIp, p.hostPort])).toEqual([
      ["udp", "127.0.0.1", 5353],
      ["udp", "::1", 5353],
    ]);
  });

  test("a 100-port range", () => {
    const bindings: Record<string, unknown> = {};
    const ports: Record<string, unknown> = {};
    for (let p = 8000; p < 8100; p++) {
      bindings[`${p}/tcp`] = [hp("", String(p))];
      ports[`${p}/tcp`] = [hp("0.0.0.0", String(p)), hp("::", String(p))];
    }
    expect(wantedPorts(inspect({ bindings, ports }), "local-default").ports).toHaveLength(200);
  });

  test("an IPv6-only container is targeted by its IPv6 address", () => {
    const c = inspect({
      ip: "",
      ip6: "fd00::242:ac11:2",
      bindings: { "80/tcp": [hp("", "80")] },
      ports: { "80/tcp": [hp("0.0.0.0", "80")] },
    });
    expect(wantedPorts(c, "local-default").ports[0]!.targetIp).toBe("fd00::242:ac11:2");
  });

  test.each([
    [
      "bindings asked for, ports not resolved yet",
      inspect({ bindings: { "80/tcp": [hp("", "8080")] }, ports: {} }),
      true,
    ],
    [
      "no address yet",
      inspect({ ip: "", bindings: { "80/tcp": [hp("", "8080")] }, ports: { "80/tcp": [hp("0.0.0.0", "8080")] } }),
      true,
    ],
    ["exposed, not published", inspect({ ports: { "80/tcp": null } }), false],
  ])("%s: pending = %p", (_name, c, pending) => {
    const w = wantedPorts(c, "local-default");
    expect(w.pending).toBe(pending);
    expect(w.ports).toEqual([]);
  });

  test("stopped and host-network containers want nothing", () => {
    expect(
      wantedPorts(
        inspect({
          running: false,
          bindings: { "80/tcp": [hp("", "8080")] },
          ports: { "80/tcp": [hp("0.0.0.0", "8080")] },
        }),
        "open",
      ).ports,
    ).toEqual([]);
    expect(wantedPorts(inspect({ mode: "host", ports: { "80/tcp": [hp("0.0.0.0", "8080")] } }), "open").ports).toEqual(
      [],
    );
  });

  test("unknown fields are stripped at the boundary", () => {
    expect("Pid" in dashP.State).toBe(false);
  });
});
