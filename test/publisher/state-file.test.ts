/**
 * Issue 20, item 3: the daemon's state file on a real file system. Its directory and file are
 * refused when another user could control them; a corrupt file is kept aside, never overwritten;
 * writes are atomic (a temp file renamed over the old one, nothing left behind).
 */
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPortStore } from "../../src/publisher/port-store.ts";
import {
  defaultStateDir,
  ensureStateDir,
  MAX_STATE_BYTES,
  readStateFile,
  removeStaleTemps,
  stateFileName,
  writeStateFile,
} from "../../src/publisher/state-file.ts";

const root = mkdtempSync(join(tmpdir(), "edgeport-state-"));
const uid = process.getuid!();
let n = 0;
const fresh = () => {
  const d = join(root, `d${n++}`);
  mkdirSync(d, { mode: 0o700 });
  return d;
};
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("where the state lives", () => {
  test.each([
    [{}, 0, "linux", "/var/lib/edgeport"],
    [{ XDG_STATE_HOME: "/x/state" }, 1000, "linux", "/x/state/edgeport"],
    [{}, 1000, "linux", "/home/u/.local/state/edgeport"],
    [{}, 1000, "darwin", "/home/u/Library/Application Support/edgeport"],
    [{}, 0, "darwin", "/Library/Application Support/edgeport"],
    [{ LOCALAPPDATA: "C:\\Users\\u\\AppData\\Local" }, 0, "win32", "C:\\Users\\u\\AppData\\Local/edgeport"],
  ])("%j uid %d on %s: %s", (env, u, platform, want) => {
    expect(defaultStateDir(env, u, platform, "/home/u")).toBe(want);
  });

  test("the default API's file is ports.json; another API's is named by its URL's hash, so daemons never share", () => {
    expect(stateFileName("unix:///run/edgeport/api.sock", "unix:///run/edgeport/api.sock")).toBe("ports.json");
    const a = stateFileName("unix:///tmp/a.sock", "unix:///run/edgeport/api.sock");
    expect(a).toMatch(/^ports-[0-9a-f]{12}\.json$/);
    expect(stateFileName("unix:///tmp/b.sock", "unix:///run/edgeport/api.sock")).not.toBe(a);
  });
});

describe("hostile state directories and files are refused, naming them", () => {
  test("a missing directory is made 0700", () => {
    const d = join(fresh(), "a", "b");
    ensureStateDir(d, uid, "linux", false);
    expect(statSync(d).mode & 0o777).toBe(0o700);
  });

  test("world-writable, group-readable, another user's, a symlink, not a directory", () => {
    const open = fresh();
    chmodSync(open, 0o777);
    expect(() => ensureStateDir(open, uid, "linux", true)).toThrow(`${open} is open to group or others (mode 0777)`);
    const other = fresh();
    chownSync(other, 65534, 65534);
    expect(() => ensureStateDir(other, uid, "linux", false)).toThrow(
      `${other} belongs to uid 65534, not to uid ${uid}`,
    );
    const link = join(fresh(), "link");
    symlinkSync(fresh(), link);
    expect(() => ensureStateDir(link, uid, "linux", false)).toThrow(`${link} is a symbolic link`);
    ensureStateDir(link, uid, "linux", true); // named with --state-dir: the user's own link is followed
    const file = join(fresh(), "f");
    writeFileSync(file, "");
    expect(() => ensureStateDir(file, uid, "linux", true)).toThrow(`${file} is not a directory`);
  });

  test("a state file that is a symlink, not a regular file, another user's or writable by others", () => {
    const d = fresh();
    const target = join(d, "elsewhere.json");
    writeFileSync(target, '{"version":1,"ports":[]}');
    symlinkSync(target, join(d, "ports.json"));
    expect(() => readStateFile(join(d, "ports.json"), uid, "linux")).toThrow(/ports\.json is a symbolic link/);
    const d2 = fresh();
    mkdirSync(join(d2, "ports.json"));
    expect(() => readStateFile(join(d2, "ports.json"), uid, "linux")).toThrow(/is not a regular file/);
    const d3 = fresh();
    writeFileSync(join(d3, "ports.json"), '{"version":1,"ports":[]}', { mode: 0o600 });
    chownSync(join(d3, "ports.json"), 65534, 65534);
    expect(() => readStateFile(join(d3, "ports.json"), uid, "linux")).toThrow(/belongs to uid 65534/);
    const d4 = fresh();
    writeFileSync(join(d4, "ports.json"), '{"version":1,"ports":[]}');
    chmodSync(join(d4, "ports.json"), 0o666);
    expect(() => readStateFile(join(d4, "ports.json"), uid, "linux")).toThrow(
      /writable by group or others \(mode 0666\)/,
    );
  });
});

describe("reading", () => {
  test("missing: nothing to restore; valid: the specs", () => {
    const d = fresh();
    expect(readStateFile(join(d, "ports.json"), uid, "linux")).toEqual({ ports: [] });
    writeFileSync(join(d, "ports.json"), '{"version":1,"ports":[{"spec":"8080:10.0.0.2:80","proxyProtocol":true}]}');
    expect(readStateFile(join(d, "ports.json"), uid, "linux")).toEqual({
      ports: [{ spec: "8080:10.0.0.2:80", proxyProtocol: true }],
    });
  });

  test.each([
    ["not JSON", "{nope", /not valid JSON/],
    ["the wrong shape", '{"version":1,"ports":[{"spec":""}]}', /not an edgeport state file \(ports\.0\.spec: /],
    ["an unknown version", '{"version":2,"ports":[]}', /not an edgeport state file \(version: /],
    ["oversized", `{"version":1,"ports":[],"api":"${"x".repeat(MAX_STATE_BYTES)}"}`, /over 1048576 bytes/],
  ])("%s: the problem is returned and the file kept aside as .bad-<time>, not overwritten", (_, text, re) => {
    const d = fresh();
    const path = join(d, "ports.json");
    writeFileSync(path, text);
    const r = readStateFile(path, uid, "linux", Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(r).toMatchObject({ ports: [], problem: expect.stringMatching(re) });
    expect(readdirSync(d)).toEqual(["ports.json.bad-2026-01-02T03-04-05-000Z"]);
    expect(fs.readFileSync(join(d, readdirSync(d)[0]!), "utf8")).toBe(text);
  });
});

describe("writing", () => {
  test("atomic: a temp file (O_EXCL, 0600) fsync'ed and renamed over the file; no temp file left", () => {
    const d = fresh();
    const path = join(d, "ports.json");
    const renames = spyOn(fs, "renameSync");
    const fsyncs = spyOn(fs, "fsyncSync");
    try {
      writeStateFile(path, { version: 1, ports: [{ spec: "8080:10.0.0.2:80" }] }, "linux");
      expect(renames).toHaveBeenCalledTimes(1);
      const [from, to] = renames.mock.calls[0]!;
      expect(String(from)).toMatch(new RegExp(`^${path}\\.tmp-`));
      expect(to).toBe(path);
      expect(fsyncs).toHaveBeenCalledTimes(2); // the file, then its directory
    } finally {
      renames.mockRestore();
      fsyncs.mockRestore();
    }
    expect(readdirSync(d)).toEqual(["ports.json"]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readStateFile(path, uid, "linux")).toEqual({ ports: [{ spec: "8080:10.0.0.2:80" }] });
    writeStateFile(path, { version: 1, ports: [] }, "linux");
    expect(readdirSync(d)).toEqual([]); // nothing kept: no file
  });

  test("a failed write leaves the old file whole and no temp file", () => {
    const d = fresh();
    const path = join(d, "ports.json");
    writeStateFile(path, { version: 1, ports: [{ spec: "1:10.0.0.2:1" }] }, "linux");
    const renames = spyOn(fs, "renameSync").mockImplementation(() => {
      throw new Error("EIO: simulated");
    });
    try {
      expect(() => writeStateFile(path, { version: 1, ports: [{ spec: "2:10.0.0.2:2" }] }, "linux")).toThrow("EIO");
    } finally {
      renames.mockRestore();
    }
    expect(readdirSync(d)).toEqual(["ports.json"]);
    expect(readStateFile(path, uid, "linux")).toEqual({ ports: [{ spec: "1:10.0.0.2:1" }] });
  });

  test("stale temp files of a crashed writer are removed at start", () => {
    const d = fresh();
    writeFileSync(join(d, "ports.json.tmp-dead"), "{");
    writeFileSync(join(d, "other.json.tmp-x"), "{");
    removeStaleTemps(join(d, "ports.json"));
    expect(readdirSync(d)).toEqual(["other.json.tmp-x"]);
  });

  test("the store writes every change before it counts; a failed write changes nothing", () => {
    const writes: unknown[] = [];
    let fail = false;
    const store = createPortStore("/x/ports.json", [{ spec: "1:10.0.0.2:1" }], {
      api: "unix:///a.sock",
      platform: "linux",
      write: (_, data) => {
        if (fail) throw new Error("ENOSPC");
        writes.push(data);
      },
    });
    store.add({ spec: "2:10.0.0.2:2", proxyProtocol: true });
    expect(writes.at(-1)).toEqual({
      version: 1,
      api: "unix:///a.sock",
      ports: [{ spec: "1:10.0.0.2:1" }, { spec: "2:10.0.0.2:2", proxyProtocol: true }],
    });
    expect(store.has({ spec: "2:10.0.0.2:2" })).toBe(false); // with the PROXY header it is another entry
    fail = true;
    expect(() => store.add({ spec: "3:10.0.0.2:3" })).toThrow("ENOSPC");
    expect(() => store.remove({ spec: "1:10.0.0.2:1" })).toThrow("ENOSPC");
    expect(store.list()).toHaveLength(2);
    fail = false;
    expect(store.remove({ spec: "1:10.0.0.2:1" })).toBe(true);
    expect(store.remove({ spec: "1:10.0.0.2:1" })).toBe(false);
    expect(writes).toHaveLength(2);
  });
});
