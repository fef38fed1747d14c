import { expect, test } from "bun:test";
import { createProxyLeases, proxySpec } from "../../src/publisher/proxy-leases.ts";

test("leases are counted: only the last release says so", () => {
  const l = createProxyLeases();
  l.acquire("a");
  l.acquire("a");
  expect(l.count("a")).toBe(2);
  expect(l.release("a")).toBe(false);
  expect(l.release("a")).toBe(true);
  expect(l.count("a")).toBe(0);
  expect(l.release("never")).toBe(true);
});

test.each([
  ["0.0.0.0", "local-default", "8080:172.17.0.2:80/tcp"],
  ["::", "local-only", "8080:172.17.0.2:80/tcp"],
  ["0.0.0.0", "open", "0.0.0.0:8080:172.17.0.2:80/tcp"],
  ["::", "open", "[::]:8080:172.17.0.2:80/tcp"],
  ["127.0.0.1", "local-default", "127.0.0.1:8080:172.17.0.2:80/tcp"],
] as const)("a proxy for %s under %s publishes %s", (hostIp, binding, spec) => {
  const req = { proto: "tcp", hostIp, hostPort: 8080, containerIp: "172.17.0.2", containerPort: 80 } as const;
  expect(proxySpec(req, binding)).toBe(spec);
});
