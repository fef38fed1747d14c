import { describe, expect, test } from "bun:test";
import { encodeRecord, MAX_DATAGRAM, RecordDecoder } from "../../../src/relay/mux/datagram.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex").replace(/(..)/g, "$1 ").trim();

describe("datagram records", () => {
  test("golden: empty address (the host's form) and an IPv4 source with a zone", () => {
    // len 13 | ip len 0 | port 0 | zone len 0 | payload len 3 | "abc"
    expect(hex(encodeRecord(new TextEncoder().encode("abc")))).toBe("0d 00 00 00 00 00 00 00 03 00 61 62 63");
    // len 16 | ip len 4, 172.17.0.2 | port 53 | zone len 1 "z" | payload len 1 "x"
    expect(hex(encodeRecord(new Uint8Array([0x78]), new Uint8Array([172, 17, 0, 2]), 53, "z"))).toBe(
      "10 00 04 00 ac 11 00 02 35 00 01 00 7a 01 00 78",
    );
  });

  test("every size 0 .. 65507 that matters passes whole, with both address forms; 65508 is refused", () => {
    const d = new RecordDecoder();
    for (const n of [0, 1, 2, 1472, 1473, 9000, 65000, MAX_DATAGRAM]) {
      const payload = new Uint8Array(n).map((_, i) => (i * 7 + n) & 0xff);
      for (const ip of [new Uint8Array(0), new Uint8Array(16).fill(1)]) {
        const recs = d.push(encodeRecord(payload, ip, 4242));
        expect(recs.length).toBe(1);
        expect(recs[0]!.payload).toEqual(payload);
        expect(recs[0]!.ip).toEqual(ip);
        expect(recs[0]!.port).toBe(4242);
      }
    }
    expect(() => encodeRecord(new Uint8Array(MAX_DATAGRAM + 1))).toThrow(/larger than 65507/);
    expect(d.pending).toBe(0);
  });

  test("a stream of records cut at every point, and byte by byte, gives the same records", () => {
    const payloads = [0, 5, 300, 1, 2000].map((n, k) => new Uint8Array(n).fill(k + 1));
    const stream = Buffer.concat(
      payloads.map((p, k) => encodeRecord(p, k % 2 ? new Uint8Array([10, 0, 0, k]) : undefined, k)),
    );
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new RecordDecoder();
      const out = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(out.map((r) => r.payload)).toEqual(payloads);
    }
    const d = new RecordDecoder();
    const out = [];
    for (const b of stream) out.push(...d.push(new Uint8Array([b])));
    expect(out.map((r) => r.port)).toEqual([0, 1, 2, 3, 4]);
    expect(out.map((r) => r.payload)).toEqual(payloads);
  });

  test("malformed records are errors naming the field", () => {
    const rec = encodeRecord(new Uint8Array(4), new Uint8Array(4), 1);
    const badIp = rec.slice();
    badIp[2] = 5;
    expect(() => new RecordDecoder().push(badIp)).toThrow(/ip length 5 is not 0, 4 or 16/);
    const badPayload = rec.slice();
    badPayload[rec.length - 6] = 9; // payload length field
    expect(() => new RecordDecoder().push(badPayload)).toThrow(/payload length 9 does not match/);
    expect(() => new RecordDecoder().push(new Uint8Array([3, 0, 0]))).toThrow(/shorter than the 10-byte minimum/);
  });
});
