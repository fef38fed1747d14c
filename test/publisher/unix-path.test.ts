import { afterAll, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkSocketDir, clearStaleSocket, listenOwnerOnly, removeOwnSocket } from "../../src/publisher/unix-path.ts";

const dir = mkdtempSync(join(tmpdir(), "ep-up-"));
const uid = process.getuid!();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the directory: this uid's and not group/world writable; else E_BAD_SPEC naming it", () => {
  expect(() => checkSocketDir(join(dir, "a.sock"), uid)).not.toThrow();
  expect(() => checkSocketDir(join(dir, "missing", "a.sock"), uid)).toThrow(
    /its directory .*missing cannot be used \(ENOENT\)/,
  );
  expect(() => checkSocketDir(join(dir, "a.sock"), uid + 1)).toThrow(
    new RegExp(`belongs to uid ${uid}, not to uid ${uid + 1}`),
  );
  const shared = join(dir, "shared");
  mkdirSync(shared);
  chmodSync(shared, 0o775);
  expect(() => checkSocketDir(join(shared, "a.sock"), uid)).toThrow(/writable by group or others \(mode 0775\)/);
  expect(() => checkSocketDir("/tmp/a.sock", uid)).toThrow(/\/tmp is writable by group or others/);
  if (uid === 0) {
    const theirs = join(dir, "theirs");
    mkdirSync(theirs);
    chownSync(theirs, 65534, 65534);
    expect(() => checkSocketDir(join(theirs, "a.sock"), 0)).toThrow(/belongs to uid 65534/);
  }
});

test("owner-only from the first instant, whatever the umask; removed only while it is still ours", () => {
  const p = join(dir, "own.sock");
  const old = process.umask(0);
  try {
    const { listener, ino } = listenOwnerOnly(p, { data() {} });
    expect(statSync(p).mode & 0o777).toBe(0o700);
    expect(process.umask()).toBe(0); // put back
    removeOwnSocket(p, ino! + 1); // not ours: left alone
    expect(existsSync(p)).toBe(true);
    removeOwnSocket(p, ino);
    expect(existsSync(p)).toBe(false);
    listener.stop(true);
  } finally {
    process.umask(old);
  }
});

test("a stale socket is removed, a live one is E_PORT_IN_USE naming it, a file is refused", async () => {
  const stale = join(dir, "stale.sock");
  Bun.spawnSync(["python3", "-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`]);
  expect(statSync(stale).isSocket()).toBe(true);
  await clearStaleSocket(stale);
  expect(existsSync(stale)).toBe(false);
  await clearStaleSocket(stale); // nothing there: fine

  const live = join(dir, "live.sock");
  const l = Bun.listen({ unix: live, socket: { data() {} } });
  try {
    await expect(clearStaleSocket(live)).rejects.toMatchObject({
      code: "E_PORT_IN_USE",
      message: expect.stringContaining(`${live} is a live socket`),
    });
    expect(existsSync(live)).toBe(true);
  } finally {
    l.stop(true);
  }
  const file = join(dir, "file.sock");
  writeFileSync(file, "x");
  await expect(clearStaleSocket(file)).rejects.toThrow(/exists and is not a socket; refusing to replace it/);
  expect(existsSync(file)).toBe(true);
});
