/** The PROXY protocol v2 header: golden bytes from the specification's layout, and back. */
import { describe, expect, test } from "bun:test";
import { parseProxyV2, proxyV2Header } from "../../src/shared/proxy-protocol.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const SIG = "0d0a0d0a000d0a515549540a";

describe("PROXY protocol v2", () => {
  test("TCP over IPv4: signature, v2 PROXY, family 0x11, 12 address bytes, then addresses and ports", () => {
    const h = proxyV2Header({ ip: "192.0.2.1", port: 56324 }, { ip: "127.0.0.1", port: 8080 });
    expect(hex(h)).toBe(`${SIG}2111000cc00002017f000001dc041f90`);
    expect(parseProxyV2(h)).toEqual({
      src: { ip: "192.0.2.1", port: 56324 },
      dst: { ip: "127.0.0.1", port: 8080 },
      length: 28,
    });
  });

  test("TCP over IPv6: family 0x21, 36 address bytes", () => {
    const h = proxyV2Header({ ip: "2001:db8::7", port: 40000 }, { ip: "::1", port: 443 });
    expect(hex(h)).toBe(
      `${SIG}21` +
        `21` +
        `0024` +
        `20010db8000000000000000000000007` +
        `00000000000000000000000000000001` +
        `9c40` +
        `01bb`,
    );
    expect(parseProxyV2(h)).toEqual({
      src: { ip: "2001:db8::7", port: 40000 },
      dst: { ip: "::1", port: 443 },
      length: 52,
    });
  });

  test("mixed families are written as IPv6 with the IPv4 side mapped; a mapped pair is IPv4", () => {
    const h = proxyV2Header({ ip: "192.0.2.1", port: 1 }, { ip: "::1", port: 2 });
    expect(h.length).toBe(52);
    expect(hex(h.subarray(16, 32))).toBe("00000000000000000000ffffc0000201");
    expect(proxyV2Header({ ip: "::ffff:10.0.0.1", port: 1 }, { ip: "::ffff:127.0.0.1", port: 2 }).length).toBe(28);
  });

  test("what is not a v2 PROXY header is not read as one", () => {
    expect(parseProxyV2(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"))).toBeNull();
    const h = proxyV2Header({ ip: "192.0.2.1", port: 1 }, { ip: "127.0.0.1", port: 2 });
    expect(parseProxyV2(h.subarray(0, 20))).toBeNull();
  });
});
