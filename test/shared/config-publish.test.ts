import { expect, test } from "bun:test";
import { mergeArgs } from "../../src/shared/config.ts";
import { parseConfig } from "../../src/shared/config-file.ts";

test('"publish" takes port specs and socket forwards; it is no flag', () => {
  const c = parseConfig(
    'publish = ["8080:172.17.0.2:80", "unix:///run/user/1000/docker.sock:unix:///var/run/docker.sock", "9090:web:80"]\n',
    "c.toml",
  );
  expect(c.publish).toHaveLength(3);
  expect(mergeArgs({ relay: "x" }, [], c)).toEqual({ relay: "x" });
});

test('a bad "publish" spec is refused at load, naming the entry and the part', () => {
  expect(() => parseConfig('{"publish":["8080:172.17.0.2:80","unix://rel.sock:unix:///vm.sock"]}', "c.json")).toThrow(
    /"publish\.1": bad spec "unix:\/\/rel\.sock:unix:\/\/\/vm\.sock": the host path "rel\.sock" is relative/,
  );
  expect(() => parseConfig('{"publish":["8080:unix:///x"]}', "c.json")).toThrow(
    /"publish\.0": .*host side "8080" is a port/,
  );
});
