import { describe, expect, test } from "bun:test";
import {
  formatHostPort,
  isLinkLocal,
  isLoopback,
  isMulticast,
  isUnspecified,
  parseIp,
  resolveHostLike,
} from "../../src/shared/address.ts";

describe("parseIp canonicalises every form before policy sees it", () => {
  test.each([
    ["127.0.0.1", 4, "127.0.0.1"],
    [" 10.1.2.3 ", 4, "10.1.2.3"],
    ["0.0.0.0", 4, "0.0.0.0"],
    ["::", 6, "::"],
    ["[::]", 6, "::"],
    ["[::1]", 6, "::1"],
    ["::ffff:0.0.0.0", 4, "0.0.0.0"],
    ["::ffff:127.0.0.1", 4, "127.0.0.1"],
    ["::FFFF:7f00:1", 4, "127.0.0.1"],
    ["FD00:0:0:0:0:0:0:2", 6, "fd00::2"],
    ["2001:db8:0:0:1:0:0:1", 6, "2001:db8::1:0:0:1"],
    ["2001:0db8:0000:0000:0000:0000:0002:0001", 6, "2001:db8::2:1"],
    ["fe80::1:2", 6, "fe80::1:2"],
    ["1:2:3:4:5:6:7:8", 6, "1:2:3:4:5:6:7:8"],
    ["1:0:3:4:5:6:7:8", 6, "1:0:3:4:5:6:7:8"],
    ["::1.2.3.4", 6, "::102:304"],
  ])("%p -> IPv%i %p", (input, family, text) => {
    const a = parseIp(input);
    expect(a.family).toBe(family as 4 | 6);
    expect(a.text).toBe(text);
    expect(parseIp(a.text).text).toBe(text); // canonical text is a fixed point
  });

  test.each([
    ["", /empty/],
    ["0", /write 0\.0\.0\.0/],
    ["127.1", /four dotted numbers/],
    ["256.0.0.1", /"256" is not a number 0-255/],
    ["010.0.0.1", /leading zero/],
    ["1.2.3.4.5", /four dotted numbers/],
    ["localhost", /host names are not accepted/],
    ["example.com", /host names are not accepted/],
    ["1::2::3", /only once/],
    ["fe80::1%eth0", /zone ids/],
    ["12345::1", /16-bit hex group/],
    ["1:2:3:4:5:6:7", /needs 8 groups/],
    ["1:2:3:4:5:6:7:8::", /too many groups/],
  ])("%p is refused: %p", (input, message) => {
    expect(() => parseIp(input)).toThrow(message);
  });
});

describe("predicates and helpers", () => {
  test.each([
    ["127.0.0.1", { loop: true, unspec: false, link: false, multi: false }],
    ["127.255.0.9", { loop: true, unspec: false, link: false, multi: false }],
    ["::1", { loop: true, unspec: false, link: false, multi: false }],
    ["0.0.0.0", { loop: false, unspec: true, link: false, multi: false }],
    ["::", { loop: false, unspec: true, link: false, multi: false }],
    ["169.254.169.254", { loop: false, unspec: false, link: true, multi: false }],
    ["fe80::1", { loop: false, unspec: false, link: true, multi: false }],
    ["febf::1", { loop: false, unspec: false, link: true, multi: false }],
    ["fec0::1", { loop: false, unspec: false, link: false, multi: false }],
    ["224.0.0.1", { loop: false, unspec: false, link: false, multi: true }],
    ["ff02::1", { loop: false, unspec: false, link: false, multi: true }],
    ["172.17.0.2", { loop: false, unspec: false, link: false, multi: false }],
  ])("%p", (input, want) => {
    const a = parseIp(input);
    expect({ loop: isLoopback(a), unspec: isUnspecified(a), link: isLinkLocal(a), multi: isMulticast(a) }).toEqual(
      want,
    );
  });
  test("localhost means both loopbacks", () => {
    expect(resolveHostLike("localhost").map((a) => a.text)).toEqual(["127.0.0.1", "::1"]);
    expect(resolveHostLike("[::1]").map((a) => a.text)).toEqual(["::1"]);
  });
  test("host:port formatting brackets IPv6", () => {
    expect(formatHostPort("::1", 80)).toBe("[::1]:80");
    expect(formatHostPort("127.0.0.1", 80)).toBe("127.0.0.1:80");
  });
});
