import { expect, test } from "bun:test";
import { formatMapping, parsePortSpec } from "../../src/shared/port-spec.ts";

const m = (hostIp: string, hostPort: number, targetIp: string, targetPort: number, proto = "tcp") => ({
  hostIp,
  hostPort,
  targetIp,
  targetPort,
  proto,
});

test.each([
  ["127.0.0.1:8080:172.17.0.2:80", [m("127.0.0.1", 8080, "172.17.0.2", 80)]],
  ["8080:172.17.0.2:80", [m("127.0.0.1", 8080, "172.17.0.2", 80), m("::1", 8080, "172.17.0.2", 80)]],
  ["localhost:8080:172.17.0.2:80", [m("127.0.0.1", 8080, "172.17.0.2", 80), m("::1", 8080, "172.17.0.2", 80)]],
  ["0.0.0.0:80:172.17.0.2:80", [m("0.0.0.0", 80, "172.17.0.2", 80)]],
  ["[::]:80:172.17.0.2:80", [m("::", 80, "172.17.0.2", 80)]],
  ["[::1]:8443:[fd00::2]:443", [m("::1", 8443, "fd00::2", 443)]],
  ["[::ffff:127.0.0.1]:8443:[fd00:0::2]:443/tcp", [m("127.0.0.1", 8443, "fd00::2", 443)]],
  [
    "127.0.0.1:8000-8002:172.17.0.2:9000-9002",
    [
      m("127.0.0.1", 8000, "172.17.0.2", 9000),
      m("127.0.0.1", 8001, "172.17.0.2", 9001),
      m("127.0.0.1", 8002, "172.17.0.2", 9002),
    ],
  ],
  ["127.0.0.1:53:172.17.0.2:53/UDP", [m("127.0.0.1", 53, "172.17.0.2", 53, "udp")]],
  ["127.0.0.1:65535:172.17.0.2:1", [m("127.0.0.1", 65535, "172.17.0.2", 1)]],
])("%p", (spec, want) => {
  expect(parsePortSpec(spec)).toEqual(want as ReturnType<typeof parsePortSpec>);
});

test.each([
  ["", /it is empty/],
  [" 8080:1.2.3.4:80", /contains spaces/],
  ["8080", /expected \[HOST_IP:\]HOST_PORT:TARGET_IP:TARGET_PORT/],
  ["8080:80", /expected/],
  ["127.0.0.1:80x:1.2.3.4:80", /host port "80x" is not a number 1-65535/],
  ["127.0.0.1:0:1.2.3.4:80", /host port "0" is not a number 1-65535/],
  ["127.0.0.1:65536:1.2.3.4:80", /host port "65536" is not a number 1-65535/],
  ["127.0.0.1:80:1.2.3.4:0", /target port "0"/],
  ["127.0.0.1:90-80:1.2.3.4:90-80", /host port range "90-80" ends before it starts/],
  ["127.0.0.1:80-89:1.2.3.4:80-85", /host range "80-89" has 10 ports but target range "80-85" has 6/],
  ["127.0.0.1:80-89:1.2.3.4:80", /has 10 ports but target range "80" has 1/],
  ["127.0.0.1:80:1.2.3.4:80/sctp", /protocol "sctp" is not tcp or udp/],
  ["::1:8080:fd00::2:80", /write IPv6 addresses in brackets/],
  ["[::1:8080:1.2.3.4:80", /bracket|closing/],
  ["myhost:8080:1.2.3.4:80", /host IP "myhost" is not an IP address/],
  ["127.0.0.1:8080:web:80", /target IP "web" is not an IP address/],
  ["127.0.0.1:8080:0.0.0.0:80", /target IP "0.0.0.0" is unspecified/],
  ["127.0.0.1:8080:localhost:80", /must be one address/],
  [":8080:1.2.3.4:80", /HOST_IP is empty/],
  ["127.0.0.1:8080::80", /TARGET_IP is missing/],
  ["127.1:8080:1.2.3.4:80", /four dotted numbers/],
  // issue 20: a missing target port was blamed on the target IP
  ["127.0.0.1:8080:10.0.0.1", /TARGET_PORT is missing after "10\.0\.0\.1" \(e\.g\. 127\.0\.0\.1:8080:10\.0\.0\.1:80\)/],
  ["8080:10.0.0.1/udp", /TARGET_PORT is missing after "10\.0\.0\.1"/],
])("%p is refused, pointing at the bad part: %p", (spec, message) => {
  expect(() => parsePortSpec(spec)).toThrow(message);
  try {
    parsePortSpec(spec);
  } catch (e) {
    expect((e as { code: string }).code).toBe("E_BAD_SPEC");
    expect((e as Error).message).toStartWith(`bad spec "${spec}": `);
  }
});

test("formatMapping brackets IPv6", () => {
  expect(formatMapping(m("::1", 8443, "fd00::2", 443) as never)).toBe("[::1]:8443 -> [fd00::2]:443/tcp");
});
