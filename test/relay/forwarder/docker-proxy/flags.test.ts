/** dockerd's Go-style flags for its userland proxy: what is read, and what is refused with which message. */
import { describe, expect, test } from "bun:test";
import {
  DEFAULT_CONTROL,
  LISTEN_FD,
  looksLikeDockerd,
  parseProxyArgs,
} from "../../../../src/relay/forwarder/docker-proxy/flags.ts";

const BINDING = {
  "host-ip": "0.0.0.0",
  "host-port": "8080",
  "container-ip": "172.17.0.2",
  "container-port": "80",
};
const argv = (o: Record<string, string>, style: (k: string, v: string) => string[]) =>
  Object.entries({ proto: "tcp", ...BINDING, ...o }).flatMap(([k, v]) => style(k, v));

describe("parseProxyArgs", () => {
  test.each<[string, (k: string, v: string) => string[]]>([
    ["-flag value", (k, v) => [`-${k}`, v]],
    ["-flag=value", (k, v) => [`-${k}=${v}`]],
    ["--flag value", (k, v) => [`--${k}`, v]],
    ["--flag=value", (k, v) => [`--${k}=${v}`]],
  ])("%s", (_name, style) => {
    expect(parseProxyArgs(argv({}, style), {})).toEqual({
      proto: "tcp",
      hostIp: "0.0.0.0",
      hostPort: 8080,
      containerIp: "172.17.0.2",
      containerPort: 80,
      control: DEFAULT_CONTROL,
      listenFd: false,
    });
  });

  test("IPv6 addresses are read as their canonical text", () => {
    const a = parseProxyArgs(
      argv({ "host-ip": "::", "container-ip": "fd00:0::2" }, (k, v) => [`-${k}`, v]),
      {},
    );
    expect([a.hostIp, a.containerIp]).toEqual(["::", "fd00::2"]);
  });

  test("--control beats EDGEPORT_CONTROL, which beats the default", () => {
    const flags = argv({}, (k, v) => [`-${k}`, v]);
    expect(parseProxyArgs(flags, {}).control).toBe(DEFAULT_CONTROL);
    expect(parseProxyArgs(flags, { EDGEPORT_CONTROL: "unix:///env.sock" }).control).toBe("unix:///env.sock");
    expect(
      parseProxyArgs([...flags, "--control", "unix:///flag.sock"], { EDGEPORT_CONTROL: "unix:///env.sock" }).control,
    ).toBe("unix:///flag.sock");
  });

  test.each<[string, string[], Record<string, string>, string]>([
    ["a port of 0", argv({ "host-port": "0" }, (k, v) => [`-${k}`, v]), {}, '-host-port "0" is not a port 1-65535'],
    ["a port past 65535", argv({ "container-port": "65536" }, (k, v) => [`-${k}`, v]), {}, "-container-port"],
    ["a port that is not digits", argv({ "host-port": "80a" }, (k, v) => [`-${k}`, v]), {}, "is not a port"],
    ["a flag without its value", [...argv({}, (k, v) => [`-${k}`, v]), "-control"], {}, "-control needs a value"],
    ["a bare word", ["tcp", ...argv({}, (k, v) => [`-${k}`, v])], {}, 'unexpected argument "tcp"'],
    [
      "a control socket that is not unix",
      argv({}, (k, v) => [`-${k}`, v]),
      { EDGEPORT_CONTROL: "tcp://1.2.3.4:1" },
      "must be unix:///path",
    ],
  ])("%s is refused", (_name, args, env, message) => {
    expect(() => parseProxyArgs(args, env)).toThrow(message);
  });
});

test("dockerd passes the listening socket on fd 4", () => expect(LISTEN_FD).toBe(4));

test.each<[string[], boolean]>([
  [["-proto", "tcp"], true],
  [["--host-ip=0.0.0.0"], true],
  [["-container-port", "80"], true],
  [["-use-listen-fd"], false],
  [["run"], false],
  [["--help"], false],
  [[], false],
])("looksLikeDockerd(%p) is %p", (args, expected) => expect(looksLikeDockerd(args)).toBe(expected));
