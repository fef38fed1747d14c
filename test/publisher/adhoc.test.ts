import { expect, test } from "bun:test";
import { adhocEntry, adhocIdOf, portIdOf, targetNames } from "../../src/publisher/adhoc.ts";

const opts = { binding: "local-default", names: new Map([["web", "172.17.0.5"]]) } as const;

test("the same meaning gives the same id; the PROXY header is part of it", () => {
  const a = adhocEntry("127.0.0.1:8080:10.0.0.2:80", "ad-hoc", false, opts).entry;
  expect(adhocEntry("127.0.0.1:8080:10.0.0.2:80/tcp", "ad-hoc", false, opts).entry.id).toBe(a.id);
  expect(adhocEntry("127.0.0.1:8080:10.0.0.2:80", "ad-hoc", true, opts).entry.id).not.toBe(a.id);
  expect(a.wants).toEqual([
    {
      key: "tcp:127.0.0.1:8080",
      proto: "tcp",
      hostIp: "127.0.0.1",
      hostPort: 8080,
      targetIp: "10.0.0.2",
      targetPort: 80,
      containerId: `adhoc:${a.id}`,
      containerName: "(ad-hoc)",
    },
  ]);
  expect(adhocIdOf(a.wants[0]!)).toBe(a.id);
  expect(portIdOf(a.wants[0]!)).toBe(a.id);
  expect(portIdOf({ ...a.wants[0]!, containerId: "0123456789abcdef" })).toBe("c-0123456789ab");
});

test("container names are listed once and resolved from the map given", () => {
  expect(targetNames("8080:web:80")).toEqual(["web"]);
  const e = adhocEntry("127.0.0.1:8080:web:80", "docker-proxy", false, opts).entry;
  expect(e.wants[0]).toMatchObject({ targetIp: "172.17.0.5", containerName: "(docker-proxy)" });
});

test("local-only narrows a wildcard to loopback, with a note", () => {
  const r = adhocEntry("0.0.0.0:8080:10.0.0.2:80", "ad-hoc", false, { ...opts, binding: "local-only" });
  expect(r.entry.wants[0]!.hostIp).toBe("127.0.0.1");
  expect(r.notes).toEqual(["0.0.0.0:8080:10.0.0.2:80: --binding local-only publishes 0.0.0.0 on 127.0.0.1 instead"]);
});

test.each([
  ["8080:10.0.0.2:80/udp", true, /PROXY protocol is for TCP only/],
  ["22:10.0.0.2:22", false, /reserved here/],
  ["8080:nobody:80", false, /no address for container "nobody"/],
])("%s is refused", (spec, proxy, re) => {
  expect(() =>
    adhocEntry(spec, "ad-hoc", proxy, { ...opts, reserved: (p) => (p === 22 ? "reserved here" : null) }),
  ).toThrow(re);
});
