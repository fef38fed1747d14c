/**
 * Issue 16, defect 6: a token or pipe secret file that group or others may read, or that another
 * user owns, is refused as ssh refuses such a key, naming the file and the chmod. Real files
 * (chown'ed to a uid nobody has; the tests run as root); test/e2e/hostile-users.test.ts runs the
 * binary as a real unprivileged user.
 */
import { afterAll, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSecretFile, secretFileProblem } from "../../src/shared/secret-file.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-secret-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const linux = (uid: number) => ({ uid, platform: "linux" });

test.each([
  [0o600, 1000, 1000, null],
  [0o400, 1000, 1000, null],
  [0o600, 0, 1000, null], // root's file, a user's edgeport: root could read it anyway
  [0o644, 1000, 1000, "may be read by group or others (mode 0644)"],
  [0o640, 1000, 1000, "(mode 0640)"],
  [0o604, 0, 0, "(mode 0604)"],
  [0o620, 1000, 1000, "(mode 0620)"],
  [0o600, 2000, 1000, "belongs to uid 2000, not to you (uid 1000) or root"],
  [0o600, 2000, 0, "belongs to uid 2000"],
])("mode %o, owner %d, edgeport as uid %d: %p", (mode, owner, uid, want) => {
  const problem = secretFileProblem("/etc/edgeport/token", { uid: owner, mode: 0o100000 | mode }, linux(uid));
  if (want === null) expect(problem).toBeNull();
  else expect(problem).toContain(want);
});

test("Windows: the ACL is not checked (documented in docs/security.md)", () => {
  expect(secretFileProblem("C:\\token", { uid: 0, mode: 0o100666 }, { uid: 0, platform: "win32" })).toBeNull();
});

test("a real 0644 file is refused naming the file and the chmod; after chmod 600 it is read", () => {
  const f = join(dir, "token");
  writeFileSync(f, "  s3cret-s3cret-s3cret \n");
  chmodSync(f, 0o644);
  expect(() => readSecretFile("--token-file", f, linux(0))).toThrow(
    `--token-file: refusing ${f} may be read by group or others (mode 0644), so any local user can use the secret: chmod 600 ${f}`,
  );
  chmodSync(f, 0o600);
  expect(readSecretFile("--token-file", f, linux(0))).toBe("s3cret-s3cret-s3cret");
});

test("a real file another uid owns is refused; a missing one names the errno", () => {
  const f = join(dir, "theirs");
  writeFileSync(f, "x".repeat(20), { mode: 0o600 });
  chownSync(f, 54321, 54321);
  expect(() => readSecretFile("--api-token-file", f, linux(0))).toThrow(`${f} belongs to uid 54321`);
  expect(() => readSecretFile("--api-token-file", join(dir, "none"), linux(0))).toThrow(
    `--api-token-file: cannot read ${join(dir, "none")}: ENOENT`,
  );
});
