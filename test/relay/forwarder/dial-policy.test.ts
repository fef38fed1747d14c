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
