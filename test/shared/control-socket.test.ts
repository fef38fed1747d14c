/**
 * Issue 16, defect 3: the control socket's directory is made with mkdir and checked with lstat,
 * never chmod'ed blindly; the CLI sends only to a socket of its own uid or root. Real files,
 * chown'ed to a uid nobody has (the tests run as root); test/e2e/hostile-users.test.ts does the
 * same with a real unprivileged user against the binary.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkDaemonSocket,
  defaultApiUrl,
  defaultControlDir,
  ensureNamedDir,
  ensurePrivateDir,
} from "../../src/shared/control-socket.ts";

const root = mkdtempSync(join(tmpdir(), "edgeport-ctlsock-"));
const STRANGER = 54321;
let n = 0;
const fresh = () => join(root, `d${++n}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

test.each([
  [{}, 0, "linux", "/run/edgeport"],
  [{ XDG_RUNTIME_DIR: "/run/user/0" }, 0, "linux", "/run/edgeport"],
  [{}, 0, "darwin", "/var/run/edgeport"],
  [{ XDG_RUNTIME_DIR: "/run/user/1000" }, 1000, "linux", "/run/user/1000/edgeport"],
  [{}, 1000, "linux", "/tmp/edgeport-1000"],
])("default directory for %p, uid %p on %s: %s", (env, uid, platform, want) => {
  expect(defaultControlDir(env, uid, platform)).toBe(want);
});

test("default API URL: EDGEPORT_API, else the directory's control.sock, else a named pipe on Windows", () => {
  expect(defaultApiUrl({ EDGEPORT_API: "tcp://127.0.0.1:1" }, 0, "linux")).toBe("tcp://127.0.0.1:1");
  expect(defaultApiUrl({}, 0, "linux")).toBe("unix:///run/edgeport/api.sock");
  expect(defaultApiUrl({}, 1000, "linux")).toBe("unix:///tmp/edgeport-1000/control.sock");
  expect(defaultApiUrl({}, 0, "win32")).toBe("npipe:////./pipe/edgeport-control");
});

describe("edgeport's own directory", () => {
  test("made owner-only; an existing one of its own, owner-only, is accepted", () => {
    const d = fresh();
    ensurePrivateDir(d, 0);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    ensurePrivateDir(d, 0);
  });

  test("a symlink is refused, and its target is not chmod'ed", () => {
    const target = fresh();
    mkdirSync(target, { mode: 0o755 });
    chmodSync(target, 0o755);
    const d = fresh();
    symlinkSync(target, d);
    expect(() => ensurePrivateDir(d, 0)).toThrow(`${d} is a symbolic link`);
    expect(statSync(target).mode & 0o777).toBe(0o755);
  });

  test("another uid's directory is refused, naming the owner and the fix", () => {
    const d = fresh();
    mkdirSync(d, { mode: 0o700 });
    chownSync(d, STRANGER, STRANGER);
    expect(() => ensurePrivateDir(d, 0)).toThrow(`${d} belongs to uid ${STRANGER}, not to uid 0`);
    expect(() => ensurePrivateDir(d, 0)).toThrow(`sudo rm -r ${d}`);
  });

  test("a directory of its own that group or others may enter is refused, with the chmod", () => {
    const d = fresh();
    mkdirSync(d);
    chmodSync(d, 0o755);
    expect(() => ensurePrivateDir(d, 0)).toThrow(`${d} is open to group or others (mode 0755)`);
    expect(() => ensurePrivateDir(d, 0)).toThrow(`chmod 700 ${d}`);
    expect(statSync(d).mode & 0o777).toBe(0o755);
  });

  test("a file is refused; a missing parent is an error naming the path", () => {
    const f = fresh();
    writeFileSync(f, "");
    expect(() => ensurePrivateDir(f, 0)).toThrow(`${f} is not a directory`);
    expect(() => ensurePrivateDir(join(fresh(), "x"), 0)).toThrow("cannot create the control socket's directory");
  });
});

describe("a directory named with --api", () => {
  test("made 0700 with its parents when missing; one of root's is accepted as it is", () => {
    const d = join(fresh(), "a", "b");
    ensureNamedDir(d, 1000);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    ensureNamedDir(root, 1000);
  });
  test("another uid's is refused", () => {
    const d = fresh();
    mkdirSync(d);
    chownSync(d, STRANGER, STRANGER);
    expect(() => ensureNamedDir(d, 0)).toThrow(`belongs to uid ${STRANGER}`);
  });
});

describe("the CLI's check of the daemon's socket", () => {
  function socketIn(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, "control.sock");
    const server = Bun.listen({ unix: path, socket: { data() {} } });
    return { path, server };
  }

  test("one of its own uid or of root passes; a missing socket passes (the dial then fails)", () => {
    const { path, server } = socketIn(fresh());
    try {
      checkDaemonSocket(path, 0);
      checkDaemonSocket(path, 1000); // root's daemon, a user's CLI
      checkDaemonSocket(join(root, "missing.sock"), 0);
    } finally {
      server.stop(true);
    }
  });

  test("a socket another uid made is refused: a fake daemon gets no request", () => {
    const { path, server } = socketIn(fresh());
    try {
      chownSync(path, STRANGER, STRANGER);
      expect(() => checkDaemonSocket(path, 0)).toThrow(
        `${path} belongs to uid ${STRANGER}, neither you (uid 0) nor root`,
      );
    } finally {
      server.stop(true);
    }
  });

  test("a socket of root's in a directory another uid owns is refused (it could be swapped)", () => {
    const dir = fresh();
    const { path, server } = socketIn(dir);
    try {
      chownSync(dir, STRANGER, STRANGER);
      expect(() => checkDaemonSocket(path, 0)).toThrow(`${dir} belongs to uid ${STRANGER}`);
    } finally {
      server.stop(true);
    }
  });

  test("a file that is not a socket is refused", () => {
    const f = fresh();
    writeFileSync(f, "");
    expect(() => checkDaemonSocket(f, 0)).toThrow("is not a socket");
  });
});
