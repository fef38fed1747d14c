/**
 * The rules of `[vm-listeners]`: which listeners of the VM (reported by the forwarder with
 * --report-listeners) the host publishes. A listener is left alone when its port is in `ignore`,
 * its process matches `ignore-processes`, or its port is in the default ignore list (ssh, the
 * engine's API, the ephemeral range) and not in `include`. Pure.
 */
import { type Config, glob, inRange } from "./config.ts";

/** Never published unless `include` names them: ssh, the engine's API, Linux's ephemeral ports. */
export const DEFAULT_VM_IGNORE: readonly (number | string)[] = [22, 2375, 2376, "32768-65535"];

const DEFAULT_WHY: Record<string, string> = {
  "22": "ssh",
  "2375": "the engine's API",
  "2376": "the engine's API (TLS)",
  "32768-65535": "the ephemeral range",
};

export interface VmListenerRules {
  enabled: boolean;
  /** why this listener is not published by rule, or null */
  ignored(port: number, process: string | undefined): string | null;
}

/** @param reserved run's reserved ports (PortRules.reserved): never published by anyone, VM listeners included */
export function vmListenerRules(config: Config, reserved?: (port: number) => string | null): VmListenerRules {
  const c = config["vm-listeners"] ?? {};
  const procs = (c["ignore-processes"] ?? []).map((n) => ({ n, re: glob(n) }));
  return {
    enabled: c.enabled ?? true,
    ignored(port, process) {
      const r = reserved?.(port);
      if (r) return r;
      const p = (c.ignore ?? []).find((x) => inRange(port, x));
      if (p !== undefined) return `port ${port} is ignored by the config (vm-listeners.ignore ${JSON.stringify(p)})`;
      const n = process === undefined ? undefined : procs.find((x) => x.re.test(process));
      if (n) return `process ${process} is ignored by the config (vm-listeners.ignore-processes "${n.n}")`;
      const d = DEFAULT_VM_IGNORE.find((x) => inRange(port, x));
      if (d !== undefined && !(c.include ?? []).some((x) => inRange(port, x)))
        return `port ${port} is in the default ignore list (${DEFAULT_WHY[String(d)]}); add it to vm-listeners.include to publish it`;
      return null;
    },
  };
}
