/**
 * dockerd's userland proxies hold leases on ad-hoc entries: two proxies (0.0.0.0 and ::) that land
 * on the same host ports share one entry, which goes when the last lease is released.
 */
import type { BindingPolicy } from "../events/wanted.ts";
import { isUnspecified, parseIp } from "../shared/address.ts";

export interface ProxyRequest {
  proto: "tcp" | "udp";
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

const bracket = (ip: string) => (ip.includes(":") ? `[${ip}]` : ip);

/**
 * The ad-hoc spec a proxy's request means. The host's binding policy decides the address when
 * dockerd says 0.0.0.0 or :: (the user named none), unless the policy is open.
 */
export function proxySpec(req: ProxyRequest, binding: BindingPolicy): string {
  const host = parseIp(req.hostIp);
  const hostPart = isUnspecified(host) && binding !== "open" ? "" : `${bracket(host.text)}:`;
  return `${hostPart}${req.hostPort}:${bracket(parseIp(req.containerIp).text)}:${req.containerPort}/${req.proto}`;
}

export interface ProxyLeases {
  acquire(id: string): void;
  /** true when that was the last lease on the entry (or there was none) */
  release(id: string): boolean;
  count(id: string): number;
}

export function createProxyLeases(): ProxyLeases {
  const refs = new Map<string, number>();
  return {
    acquire(id) {
      refs.set(id, (refs.get(id) ?? 0) + 1);
    },
    release(id) {
      const n = (refs.get(id) ?? 0) - 1;
      if (n > 0) {
        refs.set(id, n);
        return false;
      }
      refs.delete(id);
      return true;
    },
    count: (id) => refs.get(id) ?? 0,
  };
}
