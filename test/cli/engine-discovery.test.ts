/** Which engine `edgeport run` follows without --engine, and the source every engine message names. */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DiscoveryInput, discoverEngine } from "../../src/cli/engine-discovery.ts";
import { createEngine } from "../../src/events/engine.ts";

const sha = (s: string) => new Bun.CryptoHasher("sha256").update(s).digest("hex");
const meta = (name: string, host: string) =>
  JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } });

const HOME = "/home/me";
const COLIMA = "unix:///home/me/.colima/default/docker.sock";
const files: Record<string, string> = {
  "/home/me/.docker/config.json": JSON.stringify({ auths: {}, currentContext: "colima" }),
  [`/home/me/.docker/contexts/meta/${sha("colima")}/meta.json`]: meta("colima", COLIMA),
  [`/home/me/.docker/contexts/meta/${sha("lima")}/meta.json`]: meta(
    "lima",
    "unix:///home/me/.lima/docker/sock/docker.sock",
  ),
  [`/home/me/.docker/contexts/meta/${sha("remote")}/meta.json`]: meta("remote", "ssh://me@build-box"),
  [`/cfg/contexts/meta/${sha("rd")}/meta.json`]: meta("rd", "unix:///home/me/.rd/docker.sock"),
  "/cfg/config.json": JSON.stringify({ currentContext: "rd" }),
};
const input = (over: Partial<DiscoveryInput> = {}, fs: Record<string, string> = files): DiscoveryInput => ({
  env: {},
  platform: "darwin",
  home: HOME,
  read: (p) => fs[p] ?? null,
  ...over,
});

describe("discoverEngine", () => {
  test.each([
    [
      "--engine wins over everything",
      { flag: "tcp://10.0.0.1:2375", config: "none", env: { DOCKER_HOST: "unix:///x" } },
      "tcp://10.0.0.1:2375",
      "--engine",
    ],
    [
      "--engine vm:/// (the engine inside the VM, through the pipe) is taken as given",
      { flag: "vm:///var/run/docker.sock", env: { DOCKER_HOST: "unix:///x" } },
      "vm:///var/run/docker.sock",
      "--engine",
    ],
    [
      "the config file's engine may be vm:/// too",
      { config: "vm:///var/run/docker.sock", configPath: "/etc/edgeport/edgeport.toml", env: {} },
      "vm:///var/run/docker.sock",
      '"engine" in /etc/edgeport/edgeport.toml',
    ],
    [
      "the config file's engine",
      { config: "none", configPath: "/etc/edgeport/edgeport.toml", env: { DOCKER_HOST: "unix:///x" } },
      "none",
      '"engine" in /etc/edgeport/edgeport.toml',
    ],
    [
      "DOCKER_HOST before any context",
      { env: { DOCKER_HOST: "unix:///x.sock", DOCKER_CONTEXT: "lima" } },
      "unix:///x.sock",
      "DOCKER_HOST",
    ],
    [
      "DOCKER_CONTEXT before the current context",
      { env: { DOCKER_CONTEXT: "lima" } },
      "unix:///home/me/.lima/docker/sock/docker.sock",
      `docker context "lima", named by DOCKER_CONTEXT, /home/me/.docker/contexts/meta/${sha("lima")}/meta.json`,
    ],
    [
      "the current context of ~/.docker/config.json",
      {},
      COLIMA,
      `docker context "colima", current in /home/me/.docker/config.json, /home/me/.docker/contexts/meta/${sha("colima")}/meta.json`,
    ],
    [
      "DOCKER_CONFIG moves the docker CLI's directory",
      { env: { DOCKER_CONFIG: "/cfg" } },
      "unix:///home/me/.rd/docker.sock",
      `docker context "rd", current in /cfg/config.json, /cfg/contexts/meta/${sha("rd")}/meta.json`,
    ],
    [
      "DOCKER_CONTEXT=default is the platform default",
      { env: { DOCKER_CONTEXT: "default" } },
      "unix:///var/run/docker.sock",
      "the platform's default socket, DOCKER_CONTEXT=default",
    ],
  ] as const)("%s", (_, over, url, source) => {
    expect(discoverEngine(input(over as Partial<DiscoveryInput>))).toEqual({ url, source });
  });

  test.each([
    ["no docker config at all", {}, "unix:///var/run/docker.sock"],
    [
      "the current context is default",
      { "/home/me/.docker/config.json": '{"currentContext":"default"}' },
      "unix:///var/run/docker.sock",
    ],
    ["no current context", { "/home/me/.docker/config.json": '{"auths":{}}' }, "unix:///var/run/docker.sock"],
  ])("%s: the platform default", (_, fs, url) => {
    expect(discoverEngine(input({}, fs))).toEqual({ url, source: "the platform's default socket" });
    expect(discoverEngine(input({ platform: "win32" }, fs)).url).toBe("npipe:////./pipe/docker_engine");
  });

  test.each([
    [
      "a context that does not exist",
      { env: { DOCKER_CONTEXT: "gone" } },
      files,
      /the docker context "gone" \(named by DOCKER_CONTEXT\) has no \/home\/me\/\.docker\/contexts\/meta\/[0-9a-f]{64}\/meta\.json/,
    ],
    [
      "an ssh:// context",
      { env: { DOCKER_CONTEXT: "remote" } },
      files,
      /docker context "remote", named by DOCKER_CONTEXT, .* points at ssh:\/\/me@build-box, which edgeport cannot dial/,
    ],
    [
      "a broken config.json",
      {},
      { "/home/me/.docker/config.json": "{" },
      /the docker CLI's config: \/home\/me\/\.docker\/config\.json is not valid JSON/,
    ],
  ])("%s is an error that names where it came from", (_, over, fs, want) => {
    expect(() => discoverEngine(input(over as Partial<DiscoveryInput>, fs))).toThrow(want);
  });

  test("reads a real docker CLI directory as the docker CLI writes it", () => {
    const dir = mkdtempSync(join(tmpdir(), "edgeport-docker-cfg-"));
    try {
      mkdirSync(join(dir, "contexts/meta", sha("lima-docker")), { recursive: true });
      writeFileSync(join(dir, "config.json"), JSON.stringify({ currentContext: "lima-docker" }));
      writeFileSync(join(dir, "contexts/meta", sha("lima-docker"), "meta.json"), meta("lima-docker", "unix:///l.sock"));
      const read = (p: string) => {
        try {
          return readFileSync(p, "utf8");
        } catch {
          return null;
        }
      };
      const got = discoverEngine({ env: { DOCKER_CONFIG: dir }, platform: "linux", home: "/nonexistent", read });
      expect(got.url).toBe("unix:///l.sock");
      expect(got.source).toContain(`docker context "lima-docker", current in ${dir}/config.json`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("engine errors name where the URL came from", () => {
  test("an engine that does not answer", async () => {
    const e = createEngine("unix:///nonexistent/edgeport-test/docker.sock", 1000, 'docker context "lima"');
    await expect(e.ping()).rejects.toThrow(
      /^engine unix:\/\/\/nonexistent\/edgeport-test\/docker\.sock \(from docker context "lima"\) unreachable/,
    );
  });
  test("a URL edgeport cannot dial", () => {
    expect(() => createEngine("ssh://me@box", 1000, "DOCKER_HOST")).toThrow(/is not one of .* \(from DOCKER_HOST\)$/);
  });
});
