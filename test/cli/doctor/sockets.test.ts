/** Who holds a port, per OS: the parsers on captured text, Linux's lookup on real sockets. */
import { describe, expect, test } from "bun:test";
import { blocks, describeOwner } from "../../../src/cli/doctor/sockets.ts";
import {
  decodeProcAddress,
  linuxSockets,
  parseProcNet,
  parseProcNetUnix,
} from "../../../src/cli/doctor/sockets-linux.ts";
import { macosSockets, parseLsof, splitLsofName } from "../../../src/cli/doctor/sockets-macos.ts";
import {
  excludedRange,
  parseExcludedRanges,
  parseListenersJson,
  windowsSockets,
} from "../../../src/cli/doctor/sockets-windows.ts";
import type { Runner } from "../../../src/firewall/types.ts";

// captured on this Linux host (Debian, kernel 6.x): a python3 listener on [::1]:44381 and 0.0.0.0:44381
const PROC_TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:839D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 229635 1 0000000007d8af68 100 0 0 10 0
   7: 00000000:AD5D 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 744007 1 00000000e6aeb3ab 100 0 0 10 0
`;
const PROC_TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:AD5D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 744006 1 00000000e2f79529 100 0 0 10 0
   1: 00000000000000000000000001000000:6DE0 00000000000000000000000001000000:CD82 06 00000000:00000000 03:000001CA 00000000     0        0 0 3 00000000f6ce3958
`;
const PROC_UNIX = `Num       RefCount Protocol Flags    Type St Inode Path
0000000000c9bccd: 00000003 00000000 00000000 0001 02     0 /tmp/edgeport-tb-TV7NwC/docker.sock
00000000bd9eab30: 00000003 00000000 00000000 0001 03 741592
0000000060d9555b: 00000002 00000000 00010000 0001 01 742183 /tmp/edgeport-pipe-client-ZPwSMq/engine.sock
`;
// captured: lsof 4.95 here (the -F format is lsof's own, the same on macOS)
const LSOF_TCP = "p27823\ncpython3\nn[::1]:44381\nn*:44381\n";
const LSOF_MAC =
  "p812\ncnginx\nf6\nn127.0.0.1:80\nf7\nn127.0.0.1:8080->127.0.0.1:50312\np99\nccom.docker.backend\nf12\nn*:8080\n";
// netsh int ipv4 show excludedportrange protocol=tcp on Windows 11 with Hyper-V (as printed, CRLF)
const NETSH = [
  "",
  "Protocol tcp Port Exclusion Ranges",
  "",
  "Start Port    End Port",
  "----------    --------",
  "      1042        1141",
  "      5357        5357",
  "     50000       50059     *",
  "",
  "* - Administered port exclusions.",
  "",
].join("\r\n");

describe("Linux /proc", () => {
  test.each([
    ["0100007F", "127.0.0.1"],
    ["00000000", "0.0.0.0"],
    ["00000000000000000000000001000000", "::1"],
    ["00000000000000000000000000000000", "::"],
    ["B80D0120000000000000000001000000", "2001:db8::1"],
  ])("address %s is %s", (hex, text) => expect(decodeProcAddress(hex)).toBe(text));

  test("tcp and tcp6: address, port, state, uid, inode", () => {
    expect(parseProcNet(PROC_TCP)).toEqual([
      { address: "127.0.0.1", port: 0x839d, state: 0x0a, uid: 0, inode: 229635 },
      { address: "0.0.0.0", port: 44381, state: 0x0a, uid: 1000, inode: 744007 },
    ]);
    expect(parseProcNet(PROC_TCP6).map((e) => [e.address, e.port, e.state, e.inode])).toEqual([
      ["::1", 44381, 10, 744006],
      ["::1", 0x6de0, 6, 0],
    ]);
  });

  test("unix: only listening sockets with a path", () => {
    expect(parseProcNetUnix(PROC_UNIX)).toEqual([
      { path: "/tmp/edgeport-pipe-client-ZPwSMq/engine.sock", inode: 742183 },
    ]);
  });

  test("on this machine: a listener of this process is found with its pid and program", async () => {
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const found = await linuxSockets().listeners("tcp", server.port);
      expect(found).toContainEqual(
        expect.objectContaining({ pid: process.pid, address: "127.0.0.1", port: server.port, uid: process.getuid!() }),
      );
      expect(found[0]!.program).toBe((await Bun.file(`/proc/${process.pid}/comm`).text()).trim());
      expect(await linuxSockets().listeners("udp", server.port)).toEqual([]);
    } finally {
      server.stop(true);
    }
  });

  test("on this machine: the holder of a unix socket", async () => {
    const path = `/tmp/edgeport-doctor-test-${process.pid}.sock`;
    const server = Bun.listen({ unix: path, socket: { data() {} } });
    try {
      expect(await linuxSockets().unixOwner(path)).toMatchObject({ pid: process.pid });
      expect(await linuxSockets().unixOwner(`${path}.none`)).toBeNull();
    } finally {
      server.stop(true);
    }
  });
});

describe("macOS lsof", () => {
  test("-F pcn: pid, command, names", () => {
    expect(parseLsof(LSOF_TCP)).toEqual([
      { pid: 27823, program: "python3", name: "[::1]:44381" },
      { pid: 27823, program: "python3", name: "*:44381" },
    ]);
  });
  test.each([
    ["127.0.0.1:80", { address: "127.0.0.1", port: 80 }],
    ["[::1]:8080", { address: "::1", port: 8080 }],
    ["*:8080", { address: "0.0.0.0", port: 8080 }],
    ["127.0.0.1:8080->127.0.0.1:50312", { address: "127.0.0.1", port: 8080 }],
    ["/var/run/x.sock", null],
  ])("name %s", (name, want) => expect(splitLsofName(name)).toEqual(want));

  test("listeners runs lsof for the port and keeps that port's rows", async () => {
    const calls: string[][] = [];
    const run: Runner = async (argv) => {
      calls.push(argv);
      return { code: 0, stdout: LSOF_MAC, stderr: "" };
    };
    const found = await macosSockets(run, "lsof").listeners("tcp", 8080);
    expect(calls[0]).toEqual(["lsof", "-nP", "-iTCP:8080", "-sTCP:LISTEN", "-Fpcn"]);
    expect(found).toEqual([
      { pid: 812, program: "nginx", address: "127.0.0.1", port: 8080 },
      { pid: 99, program: "com.docker.backend", address: "0.0.0.0", port: 8080 },
    ]);
  });
});

describe("Windows", () => {
  test("netsh excluded port ranges", () => {
    const ranges = parseExcludedRanges(NETSH);
    expect(ranges).toEqual([
      { start: 1042, end: 1141, administered: false },
      { start: 5357, end: 5357, administered: false },
      { start: 50000, end: 50059, administered: true },
    ]);
    expect(excludedRange(ranges, 1100)?.start).toBe(1042);
    expect(excludedRange(ranges, 8080)).toBeUndefined();
  });

  test.each([
    ["", []],
    [
      '{"LocalAddress":"0.0.0.0","LocalPort":8080,"OwningProcess":4321,"ProcessName":"nginx"}',
      [{ pid: 4321, program: "nginx", address: "0.0.0.0", port: 8080 }],
    ],
    [
      '[{"LocalAddress":"::","LocalPort":80,"OwningProcess":4,"ProcessName":"System"},{"LocalAddress":"127.0.0.1","LocalPort":80,"OwningProcess":9,"ProcessName":null}]',
      [
        { pid: 4, program: "System", address: "::", port: 80 },
        { pid: 9, program: "?", address: "127.0.0.1", port: 80 },
      ],
    ],
  ])("Get-NetTCPConnection JSON %#", (json, want) => expect(parseListenersJson(json)).toEqual(want));

  test("the commands run: PowerShell for listeners, netsh for the ranges", async () => {
    const calls: string[][] = [];
    const run: Runner = async (argv) => {
      calls.push(argv);
      return { code: 0, stdout: argv[0] === "netsh" ? NETSH : "", stderr: "" };
    };
    const w = windowsSockets(run, "powershell.exe");
    expect(await w.listeners("udp", 53)).toEqual([]);
    expect(calls[0]!.at(-1)).toContain("Get-NetUDPEndpoint -LocalPort 53");
    expect((await w.excludedRanges("tcp")).length).toBe(3);
    expect(calls[1]).toEqual(["netsh", "int", "ipv4", "show", "excludedportrange", "protocol=tcp"]);
  });
});

describe("who blocks whom", () => {
  test.each([
    ["127.0.0.1", "127.0.0.1", true],
    ["0.0.0.0", "127.0.0.1", true],
    ["127.0.0.1", "0.0.0.0", true],
    ["::", "127.0.0.1", true],
    ["10.0.0.1", "127.0.0.1", false],
    ["::1", "127.0.0.1", false],
  ])("%s holds, %s wanted: %p", (held, wanted, b) => expect(blocks({ address: held, port: 1 }, wanted)).toBe(b));
  test("an owner the OS does not name says how to see it", () => {
    expect(describeOwner({ uid: 1000, address: "::1", port: 80 })).toBe(
      "a process of uid 1000 the OS does not name (run as root or administrator to see it) on [::1]:80",
    );
  });
});
