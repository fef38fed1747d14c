/**
 * Lines for what listens in the VM itself (the forwarder's --report-listeners) and is not
 * published: left alone by a `[vm-listeners]` rule, or a host port another source has (a container
 * wins). Published and failed ones have their port rows (ports.ts). Pure.
 */
import type { DaemonState } from "../../publisher/daemon.ts";
import { type CheckResult, warn } from "./check.ts";

const bracket = (ip: string) => (ip.includes(":") ? `[${ip}]` : ip);

export function vmListenerChecks(state: DaemonState | undefined, onlyPort?: number): CheckResult[] {
  return (state?.vmListeners ?? [])
    .filter((v) => v.status !== "wanted" && (onlyPort === undefined || v.port === onlyPort))
    .map((v) => {
      const who = `VM listener ${v.process ?? "(process unknown)"} on ${bracket(v.address)}:${v.port}/${v.proto}`;
      const fix =
        v.status === "ignored"
          ? "to publish it, take the port out of [vm-listeners] ignore / ignore-processes, or add it to include"
          : "the container keeps the host port: move the VM's server to another port, or stop the container";
      return warn(`vm:${v.proto}:${bracket(v.address)}:${v.port}`, `${who}: not published: ${v.reason}`, fix, {
        port: v.port,
      });
    });
}
