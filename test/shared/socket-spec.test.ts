import { expect, test } from "bun:test";
import { formatMapping, parsePortSpec } from "../../src/shared/port-spec.ts";
import { isSocketSpec, parseSocketSpec, socketUrl } from "../../src/shared/socket-spec.ts";

test.each([
  [
    "unix:///run/user/1000/docker.sock:unix:///var/run/docker.sock",
    "/run/user/1000/docker.sock",
    "/var/run/docker.sock",
  ],
  ["unix:///a:b.sock:unix:///vm/c.sock", "/a:b.sock", "/vm/c.sock"],
  ["npipe:////./pipe/docker_engine:unix:///var/run/docker.sock", "\\\\.\\pipe\\docker_engine", "/var/run/docker.sock"],
])("%p parses", (spec, hostPath, vmPath) => {
  expect(isSocketSpec(spec)).toBe(true);
  expect(parseSocketSpec(spec)).toEqual({ hostPath, vmPath });
  expect(parsePortSpec(spec)).toEqual([
    { hostIp: hostPath, hostPort: 0, targetIp: vmPath, targetPort: 0, proto: "unix" },
  ]);
});

test("a socket forward formats as its two URLs", () => {
  const [m] = parsePortSpec("npipe:////./pipe/x:unix:///vm/x.sock");
  expect(formatMapping(m!)).toBe("npipe:////./pipe/x -> unix:///vm/x.sock");
  expect(socketUrl("/a.sock")).toBe("unix:///a.sock");
});

const long = `/${"d".repeat(100)}/x.sock`; // 108 bytes: one too many with the NUL
test.each([
  ["unix://a.sock:unix:///vm.sock", /host path "a.sock" is relative/],
  ["unix:///a.sock:unix://vm.sock", /VM path "vm.sock" is relative/],
  ["unix://./a.sock:unix:///vm.sock", /host path "\.\/a.sock" is relative/],
  ["unix:///a/../b.sock:unix:///vm.sock", /host path .* has "\." or "\.\."/],
  ["unix:///a.sock:10.0.0.2:80", /the host side is a socket but the target "10.0.0.2:80" is not/],
  ["8080:unix:///x", /the host side "8080" is a port but the target is a socket/],
  ["127.0.0.1:8080:unix:///x.sock", /the host side "127.0.0.1:8080" is a port/],
  ["unix:///a.sock", /the target is missing/],
  ["unix:///a.sock:unix://", /the VM path is empty/],
  ["unix:///dir/:unix:///vm.sock", /names a directory/],
  [`unix://${long}:unix:///vm.sock`, /host path ".*" is 108 bytes, too long for a unix socket \(at most 107\)/],
  [`unix:///a.sock:unix://${long}`, /VM path ".*" is 108 bytes, too long/],
  ["unix:///a:unix:///b:unix:///c", /more than one/],
  ["npipe:////./notpipe/x:unix:///vm.sock", /host pipe .* is not npipe:\/\/\/\/.\/pipe\/NAME/],
])("%p is refused", (spec, why) => {
  expect(() => parsePortSpec(spec)).toThrow(why);
  try {
    parsePortSpec(spec);
  } catch (e) {
    expect((e as { code: string }).code).toBe("E_BAD_SPEC");
  }
});

test("107 bytes fit in sun_path", () => {
  const p = `/${"d".repeat(99)}/x.sock`;
  expect(Buffer.byteLength(p)).toBe(107);
  expect(parsePortSpec(`unix://${p}:unix:///v.sock`)[0]!.hostIp).toBe(p);
});

test("a port spec cannot say /unix", () => {
  expect(() => parsePortSpec("8080:10.0.0.1:80/unix")).toThrow(/is not tcp or udp/);
});
