import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FORWARDER_SCHEMA_PATH, SCHEMA_PATH, schemaText } from "../../scripts/gen-config-schema.ts";
import { ConfigSchema, ForwarderConfigSchema, mergeArgs, portRules } from "../../src/shared/config.ts";
import { configPath, defaultConfigDir, loadConfig, parseConfig } from "../../src/shared/config-file.ts";
import { parseDuration } from "../../src/shared/duration.ts";

describe("config file", () => {
  test("JSON and TOML give the same config", () => {
    const json = parseConfig(
      '{"relay":"unix:///run/fwd.sock","binding":"open","udp-max-flows":100,"ignore":{"ports":[22,"9000-9099"],"labels":["edgeport.ignore"]}}',
      "c.json",
    );
    const toml = parseConfig(
      'relay = "unix:///run/fwd.sock"\nbinding = "open"\n"udp-max-flows" = 100\n[ignore]\nports = [22, "9000-9099"]\nlabels = ["edgeport.ignore"]\n',
      "c.toml",
    );
    expect(toml).toEqual(json);
  });

  test("unknown keys are errors naming the key (also nested); bad values name the field", () => {
    expect(() => parseConfig('{"relay":"x","bindng":"open"}', "c.json")).toThrow(
      /--config c\.json: unknown key "bindng"/,
    );
    expect(() => parseConfig('{"ignore":{"port":[1]}}', "c.json")).toThrow(/unknown key "ignore\.port"/);
    expect(() => parseConfig('{"binding":"everywhere"}', "c.json")).toThrow(/"binding": Invalid option/);
    expect(() => parseConfig('{"resync":"soon"}', "c.json")).toThrow(/"resync": a duration with a unit/);
    expect(() => parseConfig('{"reserved":["90-80"]}', "c.json")).toThrow(/port range "90-80" must be START-END/);
    expect(() => parseConfig("relay = ", "c.toml")).toThrow(/not valid TOML/);
    expect(() => parseConfig("{", "c.json")).toThrow(/not valid JSON/);
  });

  test("flags given on the command line win over the file; the file wins over defaults", () => {
    const config = parseConfig('{"binding":"open","resync":"10s","udp-max-flows":5}', "c.json");
    const merged = mergeArgs(
      { binding: "local-only", resync: "30s", "udp-max-flows": "4096" },
      ["--binding", "local-only"],
      config,
    );
    expect(merged).toEqual({ binding: "local-only", resync: "10s", "udp-max-flows": "5" });
  });

  test("ignore rules by port (and range), container name (glob) and label; reserved ports default to 22 plus the API port", () => {
    const r = portRules(
      parseConfig(
        '{"ignore":{"ports":[8080,"9000-9099"],"containers":["db-*"],"labels":["edgeport.ignore","tier=internal"]}}',
        "c.json",
      ),
      [2375],
    );
    expect(r.ignored(9050, "web", {})).toMatch(/ignore\.ports "9000-9099"/);
    expect(r.ignored(80, "db-main", {})).toMatch(/ignore\.containers "db-\*"/);
    expect(r.ignored(80, "web", { "edgeport.ignore": "" })).toMatch(/ignore\.labels "edgeport\.ignore"/);
    expect(r.ignored(80, "web", { tier: "internal" })).toMatch(/tier=internal/);
    expect(r.ignored(80, "web", { tier: "public" })).toBeNull();
    expect(r.reserved(22)).toMatch(/reserved/);
    expect(r.reserved(2375)).toMatch(/edgeport's own API/);
    expect(r.reserved(80)).toBeNull();
    expect(portRules(parseConfig('{"reserved":[25]}', "c.json")).reserved(22)).toBeNull();
  });

  test("docs/config.schema.json and docs/forwarder.config.schema.json are generated from the schemas and up to date (bun scripts/gen-config-schema.ts)", () => {
    expect(readFileSync(SCHEMA_PATH, "utf8")).toBe(schemaText("run"));
    expect(readFileSync(FORWARDER_SCHEMA_PATH, "utf8")).toBe(schemaText("forwarder"));
    const schema = JSON.parse(schemaText());
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toContain("ignore");
  });
});

describe("config file as a new user writes it (issue 20, item 10)", () => {
  const dir = mkdtempSync(join(tmpdir(), "edgeport-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("$schema is accepted (editors use it) and never becomes a flag", () => {
    const c = parseConfig('{"$schema":"./config.schema.json","binding":"open"}', "c.json");
    expect(c.binding).toBe("open");
    expect(mergeArgs({ binding: "local-default" }, [], c)).toEqual({ binding: "open" });
  });

  test("relative paths are resolved against the config file's directory", () => {
    mkdirSync(join(dir, "etc"));
    const file = join(dir, "etc", "edgeport.toml");
    writeFileSync(
      file,
      'relay = "unix://fwd.sock"\ntoken-file = "secret"\napi-token-file = "/abs/token"\nengine = "unix:///var/run/docker.sock"\n',
    );
    expect(loadConfig(file)).toMatchObject({
      relay: `unix://${dir}/etc/fwd.sock`,
      "token-file": `${dir}/etc/secret`,
      "api-token-file": "/abs/token",
      engine: "unix:///var/run/docker.sock",
    });
  });

  test("state-dir (issue 20, item 3): relative to the config file's directory; none stays none", () => {
    expect(parseConfig('state-dir = "state"\n', join(dir, "etc", "a.toml"))["state-dir"]).toBe(`${dir}/etc/state`);
    expect(parseConfig('state-dir = "none"\n', join(dir, "etc", "a.toml"))["state-dir"]).toBe("none");
  });

  test("TOML and JSON syntax errors give line and column; YAML is told to use .toml or .json", () => {
    expect(() => parseConfig('binding = "open"\nrelay = \n', "c.toml")).toThrow(
      /^--config c\.toml:2:9: not valid TOML: invalid value$/,
    );
    expect(() => parseConfig('{\n "relay": 1,\n}', "c.json")).toThrow(/--config c\.json.*not valid JSON/);
    expect(() => parseConfig("relay: unix:///x\n", "edgeport.yaml")).toThrow(/YAML is not read; use \.toml or \.json/);
    expect(() => parseConfig("relay: unix:///x\n", "edgeport.yml")).toThrow(/use \.toml or \.json/);
  });

  test("every issue is reported, not the first", () => {
    let msg = "";
    try {
      parseConfig('{"bindng":"open","resync":"soon","window":1,"ignore":{"port":[1]},"firewall":"pf"}', "c.json");
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toStartWith("--config c.json: 5 problems:\n");
    for (const part of ['unknown key "bindng"', '"resync"', '"window"', 'unknown key "ignore.port"', '"firewall"'])
      expect(msg).toContain(part);
  });

  test('durations need a unit: "5" is an error in the file and on the command line; 0 is off', () => {
    expect(() => parseConfig('{"resync":"5"}', "c.json")).toThrow(/"resync": a duration with a unit/);
    expect(parseConfig('{"spin":"0","keepalive":"1.5s"}', "c.json")).toEqual({ spin: "0", keepalive: "1.5s" });
    expect(() => parseDuration("5", "--keepalive")).toThrow(/--keepalive: "5" has no unit/);
    expect(parseDuration("0", "--spin")).toBe(0);
    expect(parseDuration("250ms", "--spin")).toBe(250);
  });

  test("every flag of run and forwarder is a key of its config file (firewall-dry-run too)", async () => {
    const run = (await import("../../src/cli/run.ts")).default.args as Record<string, unknown>;
    const fwd = (await import("../../src/cli/forwarder.ts")).default.args as Record<string, unknown>;
    const keys = (schema: { shape: object }) => Object.keys(schema.shape);
    expect(Object.keys(run).filter((k) => k !== "config" && !keys(ConfigSchema).includes(k))).toEqual([]);
    expect(Object.keys(fwd).filter((k) => k !== "config" && !keys(ForwarderConfigSchema).includes(k))).toEqual([]);
    expect(parseConfig('firewall-dry-run = true\n"$schema" = "x"\n', "c.toml")["firewall-dry-run"]).toBe(true);
    expect(
      parseConfig('listen = "unix:///run/f.sock"\nallow = ["172.17.0.0/16", "10.0.0.0/8"]\n', "f.toml", "forwarder"),
    ).toEqual({ listen: "unix:///run/f.sock", allow: ["172.17.0.0/16", "10.0.0.0/8"] });
  });

  test("the file: --config, else EDGEPORT_CONFIG, else edgeport.toml/.json in the OS's config directory when there", () => {
    const o = { env: {}, platform: "linux", home: dir, defaults: true };
    expect(configPath("/x.toml", { ...o, env: { EDGEPORT_CONFIG: "/y.toml" } })).toBe("/x.toml");
    expect(configPath(undefined, { ...o, env: { EDGEPORT_CONFIG: "/y.toml" } })).toBe("/y.toml");
    expect(configPath(undefined, o)).toBeUndefined();
    mkdirSync(join(dir, ".config", "edgeport"), { recursive: true });
    writeFileSync(join(dir, ".config", "edgeport", "edgeport.json"), "{}");
    expect(configPath(undefined, o)).toBe(join(dir, ".config", "edgeport", "edgeport.json"));
    expect(configPath(undefined, { ...o, defaults: false })).toBeUndefined();
    expect(defaultConfigDir({ XDG_CONFIG_HOME: "/xdg" }, "linux", "/home/u")).toBe("/xdg/edgeport");
    expect(defaultConfigDir({}, "darwin", "/Users/u")).toBe("/Users/u/Library/Application Support/edgeport");
    expect(defaultConfigDir({ APPDATA: "C:/Users/u/AppData/Roaming" }, "win32", "C:/Users/u")).toBe(
      join("C:/Users/u/AppData/Roaming", "edgeport"),
    );
  });
});
