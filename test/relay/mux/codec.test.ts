import { describe, expect, test } from "bun:test";
import {
  encodeClose,
  encodeDataHeader,
  encodeFrame,
  encodeOpen,
  encodeShutdown,
  encodeWindow,
  type Frame,
  FrameDecoder,
  ProtocolError,
} from "../../../src/relay/mux/codec.ts";
import { CONN_DEDICATED, CONN_MULTIPLEXED } from "../../../src/relay/mux/constants.ts";

const hex = (s: string) =>
  Uint8Array.from(
    s
      .trim()
      .split(/\s+/)
      .map((b) => parseInt(b, 16)),
  );
const toHex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

// Golden vectors from ../shared/design/vpnkit-wire.md (read from vpnkit's source).
const v6loopback = new Uint8Array(16);
v6loopback[15] = 1;
const golden: [string, Frame, string][] = [
  [
    "Open id=4 Dedicated TCP 127.0.0.1:8080",
    {
      cmd: "open",
      id: 4,
      connType: CONN_DEDICATED,
      dest: { proto: "tcp", ip: Uint8Array.of(127, 0, 0, 1), port: 8080 },
    },
    "11 00 01 04 00 00 00 01 01 04 00 7f 00 00 01 90 1f",
  ],
  [
    "Open id=5 Multiplexed UDP [::1]:8080",
    { cmd: "open", id: 5, connType: CONN_MULTIPLEXED, dest: { proto: "udp", ip: v6loopback, port: 8080 } },
    `1d 00 01 05 00 00 00 02 02 10 00 ${"00 ".repeat(15)}01 90 1f`,
  ],
  [
    "Open id=5 Multiplexed Unix /tmp/foo",
    { cmd: "open", id: 5, connType: CONN_MULTIPLEXED, dest: { proto: "unix", path: "/tmp/foo" } },
    "13 00 01 05 00 00 00 02 03 08 00 2f 74 6d 70 2f 66 6f 6f",
  ],
  ["Close id=6", { cmd: "close", id: 6 }, "07 00 02 06 00 00 00"],
  ["Shutdown id=7", { cmd: "shutdown", id: 7 }, "07 00 03 07 00 00 00"],
  ["Window id=9 seq=0x87a238", { cmd: "window", id: 9, seq: 0x87a238 }, "0f 00 05 09 00 00 00 38 a2 87 00 00 00 00 00"],
];

describe("golden vectors", () => {
  test.each(golden)("%s encodes byte-identically", (_name, frame, bytes) => {
    expect(toHex(encodeFrame(frame))).toBe(toHex(hex(bytes)));
  });
  test.each(golden)("%s decodes to the same frame", (_name, frame, bytes) => {
    expect(new FrameDecoder().push(hex(bytes))).toEqual([frame]);
  });
  test("Data id=8 length 128: header golden, payload follows", () => {
    expect(toHex(encodeDataHeader(8, 128))).toBe("0b 00 04 08 00 00 00 80 00 00 00");
    const payload = Uint8Array.from({ length: 128 }, (_, i) => i);
    const d = new FrameDecoder();
    expect(d.push(hex("0b 00 04 08 00 00 00 80 00 00 00"))).toEqual([]);
    expect(d.push(payload)).toEqual([{ cmd: "data", id: 8, payload }]);
  });
  test("individual encoders match encodeFrame", () => {
    expect(encodeClose(6)).toEqual(hex("07 00 02 06 00 00 00"));
    expect(encodeShutdown(7)).toEqual(hex("07 00 03 07 00 00 00"));
    expect(encodeWindow(9, 0x87a238)).toEqual(hex("0f 00 05 09 00 00 00 38 a2 87 00 00 00 00 00"));
    expect(encodeOpen(4, { proto: "tcp", ip: Uint8Array.of(127, 0, 0, 1), port: 8080 }, CONN_DEDICATED)).toEqual(
      hex(golden[0]![2]),
    );
  });
});

// A small seeded PRNG so failures reproduce.
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

function randomFrame(r: () => number): Frame {
  const id = Math.floor(r() * 0xffffffff);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  switch (Math.floor(r() * 9)) {
    case 0:
      return {
        cmd: "open",
        id,
        connType: CONN_MULTIPLEXED,
        dest: { proto: r() < 0.5 ? "tcp" : "udp", ip: bytes(r() < 0.5 ? 4 : 16), port: Math.floor(r() * 65536) },
      };
    case 1:
      return {
        cmd: "open",
        id,
        connType: CONN_MULTIPLEXED,
        dest: { proto: "unix", path: `/run/${"x".repeat(Math.floor(r() * 40))}ü` },
      };
    case 2:
      return { cmd: "close", id };
    case 3:
      return { cmd: "shutdown", id };
    case 4:
      return { cmd: "data", id, payload: bytes(Math.floor(r() * 3000)) };
    case 5:
      return { cmd: "window", id, seq: Math.floor(r() * 2 ** 52) };
    case 6:
      return { cmd: "open-result", id, status: Math.floor(r() * 6), reason: "connection refused" };
    case 7:
      return { cmd: r() < 0.5 ? "ping" : "pong", id: 0, nonce: Math.floor(r() * 2 ** 40) };
    default:
      return { cmd: "auth", id: 0, mac: bytes(32) };
  }
}

const concat = (parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));

describe("round trip", () => {
  test.each([1, 2, 3, 4, 5, 6, 7, 8])(
    "seed %i: 300 random frames survive encode -> random chunking -> decode",
    (seed) => {
      const r = rng(seed * 7919);
      const frames = Array.from({ length: 300 }, () => randomFrame(r));
      const stream = concat(frames.map(encodeFrame));
      const d = new FrameDecoder();
      const got: Frame[] = [];
      for (let off = 0; off < stream.length; ) {
        const n = Math.min(stream.length - off, 1 + Math.floor(r() * 5000));
        got.push(...d.push(stream.subarray(off, off + n)));
        off += n;
      }
      expect(got).toEqual(frames);
      expect(d.buffered).toBe(0);
    },
  );
});

describe("split points", () => {
  const frames: Frame[] = golden
    .map((g) => g[1])
    .concat([
      { cmd: "data", id: 3, payload: Uint8Array.from({ length: 40 }, (_, i) => 255 - i) },
      { cmd: "data", id: 3, payload: new Uint8Array(0) },
      { cmd: "open-result", id: 3, status: 1, reason: "refused" },
      { cmd: "ping", id: 0, nonce: 99 },
    ]);
  const stream = concat(frames.map(encodeFrame));

  test("every single split point of the stream", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(got).toEqual(frames);
    }
  });
  test("every pair of split points (three pieces)", () => {
    for (let a = 0; a <= stream.length; a += 3) {
      for (let b = a; b <= stream.length; b += 5) {
        const d = new FrameDecoder();
        const got = [...d.push(stream.subarray(0, a)), ...d.push(stream.subarray(a, b)), ...d.push(stream.subarray(b))];
        expect(got).toEqual(frames);
      }
    }
  });
  test("byte by byte", () => {
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (const byte of stream) got.push(...d.push(Uint8Array.of(byte)));
    expect(got).toEqual(frames);
  });
});

describe("robust reading", () => {
  test("a longer hdrlen than needed: trailing header bytes are skipped", () => {
    // Close id=6 with 3 extra header bytes, then a normal Shutdown
    const bytes = hex("0a 00 02 06 00 00 00 aa bb cc 07 00 03 07 00 00 00");
    expect(new FrameDecoder().push(bytes)).toEqual([
      { cmd: "close", id: 6 },
      { cmd: "shutdown", id: 7 },
    ]);
  });
  test("an unknown command is reported, not fatal, and skipped by hdrlen", () => {
    const bytes = hex("09 00 7e 01 00 00 00 01 02 07 00 02 01 00 00 00");
    expect(new FrameDecoder().push(bytes)).toEqual([
      { cmd: "unknown", id: 1, code: 0x7e },
      { cmd: "close", id: 1 },
    ]);
  });
  test.each([
    ["hdrlen below 7", "05 00 02 01 00 00 00", /below the minimum/],
    ["window header too short", "0b 00 05 01 00 00 00 00 00 00 00", /window frame header is 11 bytes/],
    ["open with ip length 5", "12 00 01 01 00 00 00 02 01 05 00 01 02 03 04 05 00 00", /ip length 5/],
    ["open with unknown protocol", "11 00 01 01 00 00 00 02 09 04 00 7f 00 00 01 90 1f", /unknown protocol 9/],
    ["data larger than allowed", "0b 00 04 01 00 00 00 00 00 00 7f", /more than the/],
  ])("%s is a protocol error", (_name, bytes, message) => {
    expect(() => new FrameDecoder().push(hex(bytes))).toThrow(ProtocolError);
    expect(() => new FrameDecoder().push(hex(bytes))).toThrow(message);
  });
});

/** Adjacent Data pieces of one channel merged, empty ones dropped: what a stream-mode reader sees as bytes. */
function normalize(frames: Frame[]): Frame[] {
  const out: Frame[] = [];
  for (const f of frames) {
    if (f.cmd === "data") {
      if (f.payload.length === 0) continue;
      const last = out[out.length - 1];
      if (last?.cmd === "data" && last.id === f.id) {
        out[out.length - 1] = { cmd: "data", id: f.id, payload: concat([last.payload, f.payload]) };
        continue;
      }
    }
    out.push(f);
  }
  return out;
}

describe("stream mode (what the session uses): payloads as views, as they arrive", () => {
  test.each([1, 2, 3, 4])(
    "seed %i: 300 random frames, random chunking: the same bytes per channel, in the same order as the control frames",
    (seed) => {
      const r = rng(seed * 104729);
      const frames = Array.from({ length: 300 }, () => randomFrame(r));
      const stream = concat(frames.map(encodeFrame));
      const d = new FrameDecoder(undefined, true);
      const got: Frame[] = [];
      for (let off = 0; off < stream.length; ) {
        const n = Math.min(stream.length - off, 1 + Math.floor(r() * 5000));
        got.push(...d.push(stream.subarray(off, off + n)));
        off += n;
      }
      expect(normalize(got)).toEqual(normalize(frames));
      expect(d.buffered).toBe(0);
    },
  );

  test("a Data frame split across chunks comes out piece by piece, before its end has arrived", () => {
    const payload = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
    const wire = concat([encodeDataHeader(7, payload.length), payload]);
    const d = new FrameDecoder(undefined, true);
    const a = d.push(wire.subarray(0, 11 + 300));
    expect(a).toEqual([{ cmd: "data", id: 7, payload: payload.subarray(0, 300) }]);
    const b = d.push(wire.subarray(11 + 300));
    expect(b).toEqual([{ cmd: "data", id: 7, payload: payload.subarray(300) }]);
    expect(d.buffered).toBe(0);
  });

  test("a payload inside one received chunk is a view of that chunk: never copied", () => {
    const payload = new Uint8Array(64 * 1024).fill(0x5a);
    const chunk = concat([encodeClose(1), encodeDataHeader(9, payload.length), payload, encodeShutdown(9)]);
    const got = new FrameDecoder(undefined, true).push(chunk);
    expect(got.map((f) => f.cmd)).toEqual(["close", "data", "shutdown"]);
    const data = got[1] as Extract<Frame, { cmd: "data" }>;
    expect(data.payload.buffer).toBe(chunk.buffer);
    expect(data.payload.length).toBe(payload.length);
  });

  test("an empty Data frame still comes out once", () => {
    const got = new FrameDecoder(undefined, true).push(encodeFrame({ cmd: "data", id: 2, payload: new Uint8Array(0) }));
    expect(got).toEqual([{ cmd: "data", id: 2, payload: new Uint8Array(0) }]);
  });
});
