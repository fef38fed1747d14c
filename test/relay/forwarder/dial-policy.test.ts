import { expect, test } from "bun:test";
import { createDialPolicy } from "../../../src/relay/forwarder/dial-policy.ts";
import type { Destination } from "../../../src/relay/mux/codec.ts";
import { parseIp } from "../../../src/shared/address.ts";

const tcp = (ip: string, port = 80): Destination => ({ proto: "tcp", ip: parseIp(ip).bytes, port });

test.each([
  [["172.17.0.0/16"], tcp("172.17.0.2"), true, ""],
  [["172.17.0.0/16"], tcp("172.18.0.2"), false, "172.18.0.2 is outside the allowed networks (172.17.0.0/16)"],
  [
    ["0.0.0.0/0"],
    tcp("127.0.0.1"),
    false,
    "127.0.0.1 is a loopback address of the VM; allow it explicitly with --allow 127.0.0.1/32",
  ],
  [
    ["0.0.0.0/0"],
    tcp("169.254.169.254"),
    false,
    "169.254.169.254 is a link-local address of the VM; allow it explicitly with --allow 169.254.169.254/32",
  ],
  [["::/0"], tcp("::1"), false, "::1 is a loopback address of the VM; allow it explicitly with --allow ::1/128"],
  [["127.0.0.1/32"], tcp("127.0.0.1"), true, ""],
  [["127.0.0.0/8"], tcp("127.0.0.53"), true, ""],
  [["0.0.0.0/0"], tcp("0.0.0.0"), false, "0.0.0.0 is not a unicast address"],
  [["0.0.0.0/0"], tcp("224.0.0.1"), false, "224.0.0.1 is not a unicast address"],
  [["fd00::/8"], tcp("fd00::5"), true, ""],
  [[], tcp("172.17.0.2"), false, "172.17.0.2 is outside the allowed networks (nothing)"],
  [["unix:///run/app.sock"], { proto: "unix", path: "/run/app.sock" } as Destination, true, ""],
  [
    ["0.0.0.0/0"],
    { proto: "unix", path: "/var/run/docker.sock" } as Destination,
    false,
    "Unix socket destinations are refused unless allowed with --allow unix:///var/run/docker.sock",
  ],
])("allow %p, dest %p -> %p", async (allow, dest, ok, reason) => {
  const v = await createDialPolicy({ allow }).check(dest);
  expect(v).toEqual(ok ? { ok: true } : { ok: false, reason });
});

test("the engine's own socket (--engine unix:///path) is allowed with no --allow; that exact path only", async () => {
  const p = createDialPolicy({ allow: [], engineSocket: "/var/run/docker.sock" });
  expect(p.allowsNothing).toBe(false);
  expect(await p.check({ proto: "unix", path: "/var/run/docker.sock" })).toEqual({ ok: true });
  for (const path of ["/var/run/docker.sock.evil", "/var/run/../run/docker.sock", "/run/docker.sock", "/etc/shadow"])
    expect(await p.check({ proto: "unix", path })).toEqual({
      ok: false,
      reason: `Unix socket destinations are refused unless allowed with --allow unix://${path}`,
    });
  expect((await p.check(tcp("172.17.0.2"))).ok).toBe(false); // the socket does not open any network
  expect(p.describe()).toBe("unix:///var/run/docker.sock (the engine)");
});

test("engine subnets are allowed, and asked again (rate-limited) on a miss", async () => {
  let calls = 0;
  let subnets = ["172.17.0.0/16"];
  const p = createDialPolicy({
    allow: [],
    engineSubnets: async () => {
      calls++;
      return subnets;
    },
  });
  await p.refresh();
  expect(await p.check(tcp("172.17.0.9"))).toEqual({ ok: true });
  subnets = ["172.17.0.0/16", "172.20.0.0/16"]; // a network created just now
  const t0 = Date.now();
  // a miss right after a refresh waits for the gap, then asks again; concurrent misses share one request
  const [a, b] = await Promise.all([p.check(tcp("172.20.0.2")), p.check(tcp("172.20.0.3"))]);
  expect(a).toEqual({ ok: true });
  expect(b).toEqual({ ok: true });
  expect(calls).toBe(2);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
  expect((await p.check(tcp("10.9.9.9"))).ok).toBe(false);
  expect(calls).toBe(3);
  expect(p.describe()).toBe("engine networks 172.17.0.0/16, 172.20.0.0/16");
});

test("a bad --allow names itself", () => {
  expect(() => createDialPolicy({ allow: ["172.17.0.0/33"] })).toThrow(/172\.17\.0\.0\/33/);
  expect(() => createDialPolicy({ allow: ["unix://relative"] })).toThrow(/must be absolute/);
});

// The VM of these tables: lo, a docker bridge, an uplink with IPv4 and IPv6 (issue 16, defect 7)
const VM = ["127.0.0.1/8", "::1/128", "172.17.0.1/16", "192.0.2.2/24", "fd00::2/64", "fe80::fc:ff:fe00:1/64"];
/** An IPv4 address as the wire may carry it: 16 bytes, IPv4-mapped (::ffff:a.b.c.d). */
const mapped = (v4: string, port = 80): Destination => {
  const b = new Uint8Array(16);
  b[10] = 0xff;
  b[11] = 0xff;
  b.set(parseIp(v4).bytes, 12);
  return { proto: "tcp", ip: b, port };
};
const own = (ip: string, bits = 32) =>
  `${ip} is an address of the VM itself; allow it explicitly with --allow ${ip}/${bits}`;

test.each([
  // the bridge gateway, in every spelling: dotted, IPv4-mapped text, mapped hex text, mapped on the wire
  [["172.17.0.0/16"], tcp("172.17.0.1"), own("172.17.0.1")],
  [["172.17.0.0/16"], tcp("::ffff:172.17.0.1"), own("172.17.0.1")],
  [["172.17.0.0/16"], tcp("::FFFF:ac11:1"), own("172.17.0.1")],
  [["172.17.0.0/16"], mapped("172.17.0.1"), own("172.17.0.1")],
  [["172.17.0.0/16"], tcp("[0:0:0:0:0:ffff:172.17.0.1]"), own("172.17.0.1")],
  // IPv4-compatible (deprecated): never, whatever it embeds
  [
    ["::/0", "172.17.0.0/16"],
    tcp("::172.17.0.1"),
    "::ac11:1 is an IPv4-compatible IPv6 address (deprecated): write the IPv4 address",
  ],
  [["::/0"], tcp("::127.0.0.1"), "::7f00:1 is an IPv4-compatible IPv6 address (deprecated): write the IPv4 address"],
  // the bridge's network and broadcast addresses
  [
    ["172.17.0.0/16"],
    tcp("172.17.0.0"),
    "172.17.0.0 is the network address of the VM's subnet 172.17.0.0/16; allow it explicitly with --allow 172.17.0.0/32",
  ],
  [
    ["172.17.0.0/16"],
    mapped("172.17.255.255"),
    "172.17.255.255 is the broadcast address of the VM's subnet 172.17.0.0/16; allow it explicitly with --allow 172.17.255.255/32",
  ],
  [["172.17.0.0/16"], tcp("172.17.0.2"), null],
  [["172.17.0.0/16"], mapped("172.17.0.2"), null],
  // named exactly: allowed
  [["172.17.0.1/32"], tcp("172.17.0.1"), null],
  [["172.17.0.0/16", "172.17.0.1/32"], mapped("172.17.0.1"), null],
  [["172.17.255.255/32"], tcp("172.17.255.255"), null],
  [["fd00::2/128"], tcp("fd00::2"), null],
  // a wider allow does not name it
  [["172.17.0.0/24"], tcp("172.17.0.1"), own("172.17.0.1")],
  // --allow 0.0.0.0/0: every VM address is refused, and the limited broadcast
  [["0.0.0.0/0"], tcp("192.0.2.2"), own("192.0.2.2")],
  [["0.0.0.0/0"], tcp("::ffff:192.0.2.2"), own("192.0.2.2")],
  [
    ["0.0.0.0/0"],
    tcp("255.255.255.255"),
    "255.255.255.255 is the broadcast address of 0.0.0.0/0; allow it explicitly with --allow 255.255.255.255/32",
  ],
  [
    ["0.0.0.0/0"],
    tcp("192.0.2.255"),
    "192.0.2.255 is the broadcast address of the VM's subnet 192.0.2.0/24; allow it explicitly with --allow 192.0.2.255/32",
  ],
  [["0.0.0.0/0"], tcp("192.0.2.3"), null],
  [["0.0.0.0/0"], tcp("10.1.2.3"), null],
  // IPv6: the VM's address in several spellings, its subnet's network (subnet-router anycast) address
  [["::/0"], tcp("fd00::2"), own("fd00::2", 128)],
  [["::/0"], tcp("FD00:0:0:0:0:0:0:2"), own("fd00::2", 128)],
  [["fd00::/8"], tcp("[fd00:0::0:2]"), own("fd00::2", 128)],
  [
    ["fd00::/64"],
    tcp("fd00::"),
    "fd00:: is the network address of the VM's subnet fd00::/64; allow it explicitly with --allow fd00::/128",
  ],
  [["fd00::/64"], tcp("fd00::3"), null],
  [["fd00::/64"], tcp("fd00::ffff:ffff:ffff:ffff"), null], // IPv6 has no broadcast address
  // an allowed subnet the VM has no interface in: its own network and broadcast addresses
  [
    ["10.0.0.0/8"],
    tcp("10.0.0.0"),
    "10.0.0.0 is the network address of 10.0.0.0/8; allow it explicitly with --allow 10.0.0.0/32",
  ],
  [
    ["10.0.0.0/8"],
    mapped("10.255.255.255"),
    "10.255.255.255 is the broadcast address of 10.0.0.0/8; allow it explicitly with --allow 10.255.255.255/32",
  ],
  [["10.0.0.0/8"], tcp("10.0.0.1"), null],
  [["10.0.0.0/31"], tcp("10.0.0.0"), null], // a /31 has no network or broadcast address (RFC 3021)
  [["10.0.0.0/31"], tcp("10.0.0.1"), null],
  // loopback and link-local keep their own rule and message
  [
    ["0.0.0.0/0"],
    mapped("127.0.0.1"),
    "127.0.0.1 is a loopback address of the VM; allow it explicitly with --allow 127.0.0.1/32",
  ],
  [
    ["::/0"],
    tcp("fe80::fc:ff:fe00:1"),
    "fe80::fc:ff:fe00:1 is a link-local address of the VM; allow it explicitly with --allow fe80::fc:ff:fe00:1/128",
  ],
])("the VM's own addresses: allow %p, dest %p -> %p", async (allow, dest, reason) => {
  const v = await createDialPolicy({ allow, localInterfaces: () => VM }).check(dest);
  expect(v).toEqual(reason === null ? { ok: true } : { ok: false, reason });
});

test("the VM's interfaces are asked at every check: an address that appears is refused from then on", async () => {
  let interfaces = ["172.17.0.1/16"];
  const p = createDialPolicy({ allow: ["172.16.0.0/12"], localInterfaces: () => interfaces });
  expect(await p.check(tcp("172.18.0.1"))).toEqual({ ok: true });
  interfaces = [...interfaces, "172.18.0.1/24"]; // a network created since: a new bridge
  expect(await p.check(tcp("172.18.0.1"))).toEqual({ ok: false, reason: own("172.18.0.1") });
  expect((await p.check(tcp("172.18.0.255"))).ok).toBe(false);
  expect(await p.check(tcp("172.18.0.2"))).toEqual({ ok: true });
});

test("an engine subnet's network and broadcast addresses are refused like an allowed subnet's", async () => {
  const p = createDialPolicy({ allow: [], engineSubnets: async () => ["172.20.0.0/24"], localInterfaces: () => [] });
  await p.refresh();
  expect(await p.check(tcp("172.20.0.9"))).toEqual({ ok: true });
  expect(await p.check(tcp("172.20.0.255"))).toEqual({
    ok: false,
    reason: "172.20.0.255 is the broadcast address of 172.20.0.0/24; allow it explicitly with --allow 172.20.0.255/32",
  });
  expect((await p.check(tcp("172.20.0.0"))).ok).toBe(false);
});
