/** /proc/net/{tcp,tcp6,udp,udp6} as the kernel prints them (lines captured on this machine): what listens. */
import { describe, expect, test } from "bun:test";
import { idKey } from "../../../../src/relay/control/listeners.ts";
import { decodeProcAddress, parseProcNet } from "../../../../src/relay/forwarder/listeners/proc-net.ts";
import { formatIp } from "../../../../src/shared/address.ts";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 242 1 000000006576da90 100 0 0 10 0
   1: 0100007F:62CB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4107091 1 00000000fc53e6f3 100 0 0 10 0
   2: 0100007F:62D4 0100007F:B8B0 01 003217CF:00000000 01:00000001 00000000     0        0 4151222 3 000000008646d308 20 4 31 24 39
   3: 0F02000A:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4107099 1 00000000fc53e6f3 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:A78D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4153104 1 000000005b8d696a 100 0 0 10 0
   1: 00000000000000000000000000000000:62D4 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4151194 1 000000009218f3e3 100 0 0 10 0
   3: 0000000000000000FFFF00000100007F:62D4 0000000000000000FFFF00000100007F:B8AC 01 00000000:00000000 00:00000000 00000000     0        0 4151221 1 00000000cdf3f2b3 20 4 29 14 -1
   4: 00000000000000000000000001000000:D5E0 00000000000000000000000001000000:7640 06 00000000:00000000 03:0000060C 00000000     0        0 0 3 00000000b77f14f2
`;
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
12417: 0100007F:DC63 0100007F:E344 01 00000000:00000000 00:00000000 00000000     0        0 4153100 2 00000000c6aea5ad 0
14178: 0100007F:E344 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4153098 2 00000000cef9e75f 0
`;
const UDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 7228: 00000000000000000000000000000000:C81E 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4153099 2 000000004dd6288c 0
`;

describe("parseProcNet", () => {
  test("TCP: LISTEN only; established and time-wait sockets are clients", () => {
    expect(parseProcNet(TCP, "tcp")).toEqual([
      { proto: "tcp", ip: "0.0.0.0", port: 2024, inode: 242 },
      { proto: "tcp", ip: "127.0.0.1", port: 25291, inode: 4107091 },
      { proto: "tcp", ip: "10.0.2.15", port: 22, inode: 4107099 },
    ]);
  });
  test("TCP6: ::1 and ::", () => {
    expect(parseProcNet(TCP6, "tcp")).toEqual([
      { proto: "tcp", ip: "::1", port: 42893, inode: 4153104 },
      { proto: "tcp", ip: "::", port: 25300, inode: 4151194 },
    ]);
  });
  test("UDP: bound and unconnected only (a connected socket is a client)", () => {
    expect(parseProcNet(UDP, "udp")).toEqual([{ proto: "udp", ip: "127.0.0.1", port: 58180, inode: 4153098 }]);
    expect(parseProcNet(UDP6, "udp")).toEqual([{ proto: "udp", ip: "::", port: 51230, inode: 4153099 }]);
  });
  test.each([
    ["", "empty"],
    ["header only\n", "header"],
    ["h\n   0: zz:07E8 00000000:0000 0A a b c d e f\n", "bad hex"],
    ["h\n   0: 00000000 00000000:0000 0A 0 0 0 0 0 1\n", "no port"],
    ["h\n   0: 0000:07E8 00000000:0000 0A 0 0 0 0 0 1\n", "short address"],
    ["h\n   0: 00000000:0000 00000000:0000 0A 0 0 0 0 0 1\n", "port 0"],
    ["h\n   0: 00000000:07E8 00000000:0000 0A\n", "truncated line"],
  ])("%j (%s): nothing", (text) => {
    expect(parseProcNet(text, "tcp")).toEqual([]);
  });
  test("keys", () => {
    expect(idKey({ proto: "udp", ip: "::", port: 53 })).toBe("udp:[::]:53");
    expect(idKey({ proto: "tcp", ip: "127.0.0.1", port: 5173 })).toBe("tcp:127.0.0.1:5173");
  });
  test("a big-endian machine prints the bytes in order", () => {
    expect(formatIp(decodeProcAddress("7F000001", false))).toBe("127.0.0.1");
    expect(formatIp(decodeProcAddress("0100007F"))).toBe("127.0.0.1");
  });
});
