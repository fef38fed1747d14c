import { expect, test } from "bun:test";
import { formatTransportUrl, parseTransportUrl, splitCommand } from "../../../src/relay/transports/url.ts";

test.each([
  ["unix:///tmp/edgeport/fwd.sock", "connect", { kind: "unix", path: "/tmp/edgeport/fwd.sock" }],
  ["tcp://127.0.0.1:7777", "connect", { kind: "tcp", host: "127.0.0.1", port: 7777 }],
  ["tcp://[::1]:7777", "listen", { kind: "tcp", host: "::1", port: 7777 }],
  ["tcp://localhost:7777", "connect", { kind: "tcp", host: "127.0.0.1", port: 7777 }],
  ["tcp://127.0.0.1:0", "listen", { kind: "tcp", host: "127.0.0.1", port: 0 }],
  [
    "exec:wsl.exe -d dist -- edgeport forwarder --listen stdio:",
    "connect",
    { kind: "exec", command: "wsl.exe", args: ["-d", "dist", "--", "edgeport", "forwarder", "--listen", "stdio:"] },
  ],
  [
    `exec:sh -c 'exec edgeport forwarder --listen stdio:' "a b"`,
    "connect",
    { kind: "exec", command: "sh", args: ["-c", "exec edgeport forwarder --listen stdio:", "a b"] },
  ],
  ["stdio:", "listen", { kind: "stdio" }],
  ["npipe:////./pipe/edgeport", "connect", { kind: "npipe", path: "\\\\.\\pipe\\edgeport" }],
  ["vsock://3:1024", "connect", { kind: "vsock", cid: 3, port: 1024 }],
  ["vsock://any:1024", "listen", { kind: "vsock", cid: 0xffffffff, port: 1024 }],
  ["vsock://2:1024", "listen", { kind: "vsock", cid: 2, port: 1024 }],
  ["fd://3", "listen", { kind: "fd", fd: 3 }],
  ["fd://7", "connect", { kind: "fd", fd: 7 }],
])("%p (%s)", (url, role, want) => {
  const u = parseTransportUrl(url, role as "connect" | "listen");
  expect(u).toEqual(want as never);
  expect(parseTransportUrl(formatTransportUrl(u), role as "connect" | "listen")).toEqual(u); // round trip
});

test.each([
  ["unix://relative/path", "connect", /must be absolute/],
  ["tcp://127.0.0.1", "connect", /write tcp:\/\/IP:PORT/],
  ["tcp://127.0.0.1:0", "connect", /port 0 is out of range/],
  ["tcp://127.0.0.1:70000", "listen", /port 70000 is out of range/],
  ["tcp://example.com:80", "connect", /not an IP address/],
  ["exec:", "connect", /no command after exec:/],
  ["exec:edgeport forwarder", "listen", /exec: is for the host side/],
  ["stdio:", "connect", /stdio: is for the forwarder side/],
  ["npipe://./pipe/x", "connect", /write npipe:\/\/\/\/\.\/pipe\/NAME/],
  ["npipe:////./pipe/a\\b", "connect", /write npipe/],
  [
    "http://127.0.0.1:80",
    "connect",
    /unknown scheme; accepted forms: unix:\/\/\/path, tcp:\/\/IP:PORT, npipe:\/\/\/\/\.\/pipe\/NAME, vsock:\/\/CID:PORT, fd:\/\/N, exec:COMMAND ARGS/,
  ],
  [
    "/tmp/fwd.sock",
    "listen",
    /accepted forms: unix:\/\/\/path, tcp:\/\/IP:PORT, npipe:\/\/\/\/\.\/pipe\/NAME, vsock:\/\/any:PORT, fd:\/\/N, stdio:/,
  ],
  [`exec:sh -c 'unclosed`, "connect", /unclosed/],
  ["vsock://any:1024", "connect", /connect to a CID, not any: 2 is the host, 3 and up are VMs/],
  ["vsock://3", "connect", /write vsock:\/\/CID:PORT \(vsock:\/\/any:PORT to listen\)/],
  ["vsock://vm:1024", "connect", /CID "vm" is not a number/],
  ["vsock://3:4294967295", "connect", /port 4294967295 is out of range/],
  ["fd://1", "listen", /fd 1 is stdin, stdout or stderr; use stdio: for those/],
  ["fd://x", "listen", /write fd:\/\/N/],
])("%p (%s) is refused: %p", (url, role, message) => {
  expect(() => parseTransportUrl(url, role as "connect" | "listen")).toThrow(message);
});

test("splitCommand keeps empty quoted arguments", () => {
  expect(splitCommand(`a "" 'b c'`)).toEqual(["a", "", "b c"]);
});
