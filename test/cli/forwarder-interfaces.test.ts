import { expect, test } from "bun:test";
import type { NetworkInterfaceInfo } from "node:os";
import { interfaceAddresses } from "../../src/cli/forwarder.ts";

const nic = (cidr: string): NetworkInterfaceInfo =>
  ({ address: cidr.split("/")[0], cidr, family: cidr.includes(":") ? "IPv6" : "IPv4" }) as NetworkInterfaceInfo;

test("the VM's interface addresses: read once per second at most, and at once after invalidate()", () => {
  let reads = 0;
  let t = 0;
  let nics: Record<string, NetworkInterfaceInfo[]> = { lo: [nic("127.0.0.1/8"), nic("::1/128")] };
  const local = interfaceAddresses(
    () => {
      reads++;
      return nics;
    },
    () => t,
  );
  expect(local.get()).toEqual(["127.0.0.1/8", "::1/128"]);
  nics = { ...nics, docker0: [nic("172.17.0.1/16")] };
  t = 999;
  expect(local.get()).toEqual(["127.0.0.1/8", "::1/128"]);
  expect(reads).toBe(1);
  t = 1000;
  expect(local.get()).toEqual(["127.0.0.1/8", "::1/128", "172.17.0.1/16"]);
  nics = { ...nics, br1: [nic("172.18.0.1/24")] };
  local.invalidate();
  expect(local.get()).toContain("172.18.0.1/24");
  expect(reads).toBe(3);
});
