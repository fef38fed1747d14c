/** dockerd's flags for its userland proxy, as `edgeport docker-proxy` reads them. */
import { describe, expect, test } from "bun:test";
import { DEFAULT_CONTROL, looksLikeDockerd, parseProxyArgs } from "../../src/cli/docker-proxy.ts";

const FLAGS = [
  "-proto",
  "tcp",
  "-host-ip",
  "0.0.0.0",
  "-host-port",
  "8080",
  "-container-ip",
  "172.17.0.2",
  "-container-port",
  "80",
];

describe("docker-proxy flags", () => {
  test("dockerd's flags, in its Go style, with and without -use-listen-fd", () => {
    expect(parseProxyArgs(FLAGS, {})).toEqual({
      proto: "tcp",
      hostIp: "0.0.0.0",
      hostPort: 8080,
      containerIp: "172.17.0.2",
      containerPort: 80,
      control: DEFAULT_CONTROL,
      listenFd: false,
    });
    expect(parseProxyArgs([...FLAGS, "-use-listen-fd"], {}).listenFd).toBe(true);
    expect(parseProxyArgs([...FLAGS, "-use-listen-fd=true"], {}).listenFd).toBe(true);
    expect(parseProxyArgs([...FLAGS, "--use-listen-fd=false"], {}).listenFd).toBe(false);
    expect(parseProxyArgs([...FLAGS, "-use-listen-fd=T"], {}).listenFd).toBe(true);
    expect(parseProxyArgs([...FLAGS, "-use-listen-fd=FALSE"], {}).listenFd).toBe(false);
    expect(parseProxyArgs(["--proto=udp", ...FLAGS.slice(2)], { EDGEPORT_CONTROL: "unix:///x.sock" })).toMatchObject({
      proto: "udp",
      control: "unix:///x.sock",
    });
    expect(looksLikeDockerd(FLAGS)).toBe(true);
    expect(looksLikeDockerd(["run"])).toBe(false);
  });

  test("bad flags are named", () => {
    expect(() => parseProxyArgs([...FLAGS, "-use-listen-fd=maybe"], {})).toThrow(
      '-use-listen-fd="maybe" is not true or false',
    );
    expect(() => parseProxyArgs([...FLAGS, "-bogus", "1"], {})).toThrow("unknown flag -bogus");
    expect(() => parseProxyArgs(FLAGS.slice(2), {})).toThrow("-proto is missing");
    expect(() => parseProxyArgs(["-proto", "sctp", ...FLAGS.slice(2)], {})).toThrow("sctp is not relayed");
    expect(() => parseProxyArgs([...FLAGS.slice(0, 3), "not-an-ip", ...FLAGS.slice(4)], {})).toThrow("-host-ip");
  });
});
