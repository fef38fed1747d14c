/** sock_diag: the request's bytes, a hand-made answer parsed, and the real kernel against /proc/net on real sockets. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { PROC_NET_FILES, parseProcNet } from "../../../../src/relay/forwarder/listeners/proc-net.ts";
import {
  encodeDiagRequest,
  openSockDiag,
  parseDiagChunk,
} from "../../../../src/relay/forwarder/listeners/sock-diag.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("sock_diag messages", () => {
  test("the request: nlmsghdr (72 bytes, SOCK_DIAG_BY_FAMILY, REQUEST|DUMP, seq) and inet_diag_req_v2", () => {
    // len 72, type 20, flags 0x301, seq 7, pid 0 | AF_INET, IPPROTO_TCP, ext 0, pad, states 1<<10 | sockid 48 x 00
    expect(hex(encodeDiagRequest(2, "tcp", 7))).toBe(
      `480000001400010307000000000000000206000000040000${"00".repeat(48)}`,
    );
    const udp6 = encodeDiagRequest(10, "udp", 1);
    expect([udp6[16], udp6[17], new DataView(udp6.buffer).getUint32(20, true)]).toEqual([10, 17, 1 << 7]);
  });
  test("an answer: one socket, then DONE; an error ends it", () => {
    const b = new Uint8Array(16 + 72 + 20);
    const v = new DataView(b.buffer);
    v.setUint32(0, 88, true);
    v.setUint16(4, 20, true);
    b[16] = 10; // AF_INET6
    b[17] = 10; // LISTEN
    v.setUint16(20, 5173, false);
    b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 24);
    v.setUint32(16 + 68, 4242, true);
    v.setUint32(88, 20, true);
    v.setUint16(92, 3, true); // DONE
    expect(parseDiagChunk(b, "tcp")).toEqual({
      sockets: [{ proto: "tcp", ip: "::1", port: 5173, inode: 4242 }],
      done: true,
    });
    v.setUint16(92, 2, true);
    v.setInt32(104, -13, true);
    expect(parseDiagChunk(b, "tcp")).toMatchObject({ done: true, error: 13 });
    expect(parseDiagChunk(b.subarray(0, 40), "tcp")).toEqual({ sockets: [], done: false }); // truncated: nothing
  });
});

describe("sock_diag on this machine's kernel", () => {
  test("the same listeners as /proc/net; a closed one is gone", async () => {
    const tcp4 = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const tcp6 = Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } });
    const udp = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
    const diag = openSockDiag();
    expect(diag).not.toBeNull();
    try {
      const key = (s: { proto: string; ip: string; port: number }) => `${s.proto} ${s.ip} ${s.port}`;
      const got = diag!.dump();
      expect(Array.isArray(got)).toBe(true);
      const keys = new Set((got as { proto: string; ip: string; port: number }[]).map(key));
      for (const k of [`tcp 127.0.0.1 ${tcp4.port}`, `tcp ::1 ${tcp6.port}`, `udp 127.0.0.1 ${udp.port}`])
        expect(keys.has(k)).toBe(true);
      const proc = PROC_NET_FILES.flatMap(({ file, proto }) =>
        parseProcNet(readFileSync(`/proc/net/${file}`, "latin1"), proto),
      );
      for (const k of [`tcp 127.0.0.1 ${tcp4.port}`, `tcp ::1 ${tcp6.port}`, `udp 127.0.0.1 ${udp.port}`])
        expect(proc.map(key)).toContain(k);
      tcp4.stop(true);
      const after = diag!.dump();
      expect(Array.isArray(after) && after.some((s) => s.port === tcp4.port && s.proto === "tcp")).toBe(false);
    } finally {
      diag?.close();
      tcp6.stop(true);
      udp.close();
    }
  });
});
