/** The listeners extension's lines: golden lines, chunking of a big picture, hostile lines refused, negotiation. */
import { describe, expect, test } from "bun:test";
import {
  decodeAllow,
  decodeReport,
  encodeAllow,
  encodeReport,
  REPORT_CHUNK,
  targetOf,
} from "../../../src/relay/control/listeners.ts";
import { createDialPolicy } from "../../../src/relay/forwarder/dial-policy.ts";
import { EXT_LISTENERS } from "../../../src/relay/mux/constants.ts";
import { type HelloPayload, negotiate } from "../../../src/relay/mux/handshake.ts";
import { parseIp } from "../../../src/shared/address.ts";
import { isEdgeportError } from "../../../src/shared/errors.ts";

describe("listener lines", () => {
  test("golden lines", () => {
    expect(encodeReport(true, [{ proto: "tcp", ip: "0.0.0.0", port: 5173, process: "node" }], [])).toEqual([
      '{"op":"listeners","full":true,"add":[{"proto":"tcp","ip":"0.0.0.0","port":5173,"process":"node"}],"remove":[]}\n',
    ]);
    expect(encodeReport(false, [], [{ proto: "udp", ip: "::", port: 53 }])).toEqual([
      '{"op":"listeners","full":false,"add":[],"remove":[{"proto":"udp","ip":"::","port":53}]}\n',
    ]);
    expect(encodeReport(false, [], [])).toEqual([]);
    expect(encodeReport(true, [], [])).toHaveLength(1);
    expect(encodeAllow(["tcp:127.0.0.1:5173"])).toBe('{"op":"allow","targets":["tcp:127.0.0.1:5173"]}\n');
  });
  test("a big picture spans lines of at most REPORT_CHUNK, only the first full; each decodes", () => {
    const add = Array.from({ length: 2500 }, (_, i) => ({ proto: "tcp" as const, ip: "127.0.0.1", port: i + 1 }));
    const lines = encodeReport(true, add, []).map((l) => decodeReport(l.trim()));
    expect(lines.map((l) => [l.full, l.add.length])).toEqual([
      [true, REPORT_CHUNK],
      [false, REPORT_CHUNK],
      [false, 500],
    ]);
  });
  test.each([
    ["not json", "{"],
    ["unknown op", '{"op":"x"}'],
    ["port 0", '{"op":"listeners","full":true,"add":[{"proto":"tcp","ip":"0.0.0.0","port":0}],"remove":[]}'],
    ["not canonical", '{"op":"listeners","full":true,"add":[{"proto":"tcp","ip":"::0","port":1}],"remove":[]}'],
    ["a name", '{"op":"listeners","full":true,"add":[{"proto":"tcp","ip":"localhost","port":1}],"remove":[]}'],
    ["unix", '{"op":"listeners","full":true,"add":[{"proto":"unix","ip":"::","port":1}],"remove":[]}'],
    ["extra key", '{"op":"listeners","full":true,"add":[],"remove":[],"x":1}'],
  ])("refused: %s", (_, line) => {
    let err: unknown;
    try {
      decodeReport(line);
    } catch (e) {
      err = e;
    }
    expect(isEdgeportError(err, "E_PROTOCOL")).toBe(true);
  });
  test("allow lines", () => {
    expect(decodeAllow('{"op":"allow","targets":[]}').targets).toEqual([]);
    expect(() => decodeAllow('{"op":"allow"}')).toThrow(/bad allow line/);
  });
  test.each([
    ["0.0.0.0", "127.0.0.1"],
    ["::", "::1"],
    ["127.0.0.1", "127.0.0.1"],
    ["::1", "::1"],
    ["10.0.2.15", "10.0.2.15"],
  ])("a listener on %s is dialled on %s", (ip, target) => {
    expect(targetOf({ proto: "tcp", ip, port: 80 })).toEqual({ proto: "tcp", ip: target, port: 80 });
  });
});

describe("negotiation and the dial policy", () => {
  const hello = (ext: string[]): HelloPayload => ({
    edgeport: 1,
    role: "vm",
    window: 65536,
    ext,
    auth: false,
    nonce: "0".repeat(32),
  });
  test("in effect only when both ends list it", () => {
    expect(negotiate(hello([EXT_LISTENERS]), hello([EXT_LISTENERS])).ext.has(EXT_LISTENERS)).toBe(true);
    expect(negotiate(hello([EXT_LISTENERS]), hello(["ping"])).ext.has(EXT_LISTENERS)).toBe(false);
    expect(negotiate(hello([EXT_LISTENERS]), null).ext.has(EXT_LISTENERS)).toBe(false);
  });
  test("a reported listener passes on loopback; the rest of loopback stays refused", async () => {
    const policy = createDialPolicy({
      allow: [],
      reportedListener: async (t) => t.proto === "tcp" && t.ip === "127.0.0.1" && t.port === 5173,
    });
    const dest = (ip: string, port: number) => ({ proto: "tcp" as const, ip: parseIp(ip).bytes, port });
    expect(await policy.check(dest("127.0.0.1", 5173))).toEqual({ ok: true });
    expect((await policy.check(dest("127.0.0.1", 5174))).ok).toBe(false);
    expect((await policy.check(dest("::ffff:127.0.0.1", 5174))).ok).toBe(false);
    expect(await policy.check(dest("::ffff:127.0.0.1", 5173))).toEqual({ ok: true });
    expect(policy.allowsNothing).toBe(false);
  });
});
