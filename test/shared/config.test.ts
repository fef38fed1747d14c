import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { SCHEMA_PATH, schemaText } from "../../scripts/gen-config-schema.ts";
import { mergeArgs, parseConfig, portRules } from "../../src/shared/config.ts";

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
    expect(() => parseConfig('{"resync":"soon"}', "c.json")).toThrow(/"resync": a duration like/);
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

  test("docs/config.schema.json is generated from the schema and up to date (bun scripts/gen-config-schema.ts)", () => {
    expect(readFileSync(SCHEMA_PATH, "utf8")).toBe(schemaText());
    const schema = JSON.parse(schemaText());
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toContain("ignore");
  });
});
