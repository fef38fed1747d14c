import { expect, test } from "bun:test";
import { parseIp } from "../../src/shared/address.ts";
import { cidrContains, parseCidr } from "../../src/shared/cidr.ts";

test.each([
  ["172.17.0.0/16", "172.17.0.0/16"],
  ["172.17.5.9/16", "172.17.0.0/16"],
  ["10.1.2.3", "10.1.2.3/32"],
  ["0.0.0.0/0", "0.0.0.0/0"],
  ["10.255.255.255/20", "10.255.240.0/20"],
  ["fd00::/8", "fd00::/8"],
  ["fd12:3456::1/65", "fd12:3456::/65"],
  ["::1", "::1/128"],
  ["[fe80::]/10", "fe80::/10"],
])("%p parses to %p", (input, text) => {
  expect(parseCidr(input).text).toBe(text);
});

test.each([
  ["10.0.0.0/33", /longer than 32 bits/],
  ["fd00::/129", /longer than 128 bits/],
  ["10.0.0.0/x", /not a number/],
  ["10.0.0/8", /not a CIDR/],
  ["10.0.0.0/8/8", /more than one/],
  ["", /not a CIDR/],
])("%p is refused: %p", (input, message) => {
  expect(() => parseCidr(input)).toThrow(message);
});

test.each([
  ["172.17.0.0/16", "172.17.255.254", true],
  ["172.17.0.0/16", "172.18.0.1", false],
  ["10.255.240.0/20", "10.255.255.1", true],
  ["10.255.240.0/20", "10.255.239.255", false],
  ["0.0.0.0/0", "8.8.8.8", true],
  ["0.0.0.0/0", "::1", false], // families never mix
  ["fd12:3456::/65", "fd12:3456::7fff:0:0:1", true],
  ["fd12:3456::/65", "fd12:3456::8000:0:0:1", false],
  ["::/0", "fe80::1", true],
  ["10.1.2.3/32", "10.1.2.3", true],
  ["10.1.2.3/32", "10.1.2.4", false],
  ["128.0.0.0/1", "127.255.255.255", false],
  ["128.0.0.0/1", "128.0.0.0", true],
  ["172.17.0.0/16", "::ffff:172.17.0.2", true], // mapped form canonicalised to IPv4 first
])("%p contains %p: %p", (cidr, ip, want) => {
  expect(cidrContains(parseCidr(cidr), parseIp(ip))).toBe(want);
});
