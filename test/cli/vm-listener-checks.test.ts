/** `edgeport why PORT` / doctor lines for VM listeners that are not published. */
import { expect, test } from "bun:test";
import { vmListenerChecks } from "../../src/cli/doctor/vm-listeners.ts";
import type { DaemonState } from "../../src/publisher/daemon.ts";

const state = {
  vmListeners: [
    { proto: "tcp", address: "0.0.0.0", port: 5173, process: "node", status: "wanted" },
    {
      proto: "tcp",
      address: "::",
      port: 22,
      process: "sshd",
      status: "ignored",
      reason: "port 22 is in the default ignore list (ssh)",
    },
    { proto: "udp", address: "127.0.0.1", port: 8080, status: "taken", reason: "host port 8080 is published for web" },
  ],
} as unknown as DaemonState;

test("ignored and taken listeners are explained; published ones are left to their port rows", () => {
  const lines = vmListenerChecks(state);
  expect(lines.map((l) => [l.id, l.verdict, l.port, l.detail])).toEqual([
    [
      "vm:tcp:[::]:22",
      "warn",
      22,
      "VM listener sshd on [::]:22/tcp: not published: port 22 is in the default ignore list (ssh)",
    ],
    [
      "vm:udp:127.0.0.1:8080",
      "warn",
      8080,
      "VM listener (process unknown) on 127.0.0.1:8080/udp: not published: host port 8080 is published for web",
    ],
  ]);
  expect(lines.every((l) => l.fix)).toBe(true);
  expect(vmListenerChecks(state, 22)).toHaveLength(1);
  expect(vmListenerChecks(undefined)).toEqual([]);
});
