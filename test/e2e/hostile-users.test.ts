/**
 * Another local user against edgeport (issue 16, defects 3 and 6), with a real unprivileged user
 * made by `useradd` for this file (removed after, also on failure): it pre-creates the control
 * socket's directory, plants a symlink, serves a fake daemon, offers token files. Root's CLI and
 * daemon, and that user's own daemon, must refuse with messages that name the path and the fix.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { EDGEPORT, ensureBinary, stopProcess, until, writeToken } from "../helpers/e2e.ts";
import { freePortRange } from "../helpers/tcp-client.ts";

const USER = `epmal${process.pid % 100000}`;
let uid = -1;
let gid = -1;
/** a directory the user may enter, holding its files */
const home = mkdtempSync("/tmp/edgeport-hostile-users-");
/** a directory of the user's own, inside it */
const userDir = join(home, "user");
/** root's old default directory, the name the user squats on */
const SQUAT = "/tmp/edgeport-0";
const saved = `${SQUAT}.saved-${process.pid}`;
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
const procs: Bun.Subprocess[] = [];

const sh = (argv: string[]) => {
  const r = Bun.spawnSync(argv, { stdin: "ignore", env });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
};
/** argv as the unprivileged user: no groups, none of root's environment */
const asUser = (argv: string[]) => ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", ...argv];
const run = (argv: string[], timeout = 15_000) => {
  const r = Bun.spawnSync(argv, { stdin: "ignore", env, timeout });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
};
const edgeport = (args: string[]) => run([EDGEPORT, ...args]);
/** the same, without blocking this process (when it serves the socket itself) */
async function edgeportAsync(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = Bun.spawn([EDGEPORT, ...args], { stdin: "ignore", env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: out + err };
}
const rmrf = (p: string) => rmSync(p, { recursive: true, force: true });

/** The user's fake daemon: logs every request it gets, answers with a reply of the wrong shape. */
async function fakeDaemon(sock: string, log: string): Promise<void> {
  const script = join(home, "fake-daemon.ts");
  writeFileSync(
    script,
    `const [sock, log] = process.argv.slice(2);
Bun.serve({ unix: sock, async fetch(req) {
  require("node:fs").appendFileSync(log, req.method + " " + new URL(req.url).pathname + " " + (await req.text()) + "\\n");
  return Response.json({ id: "p-1", created: true, ports: "all yours" }, { status: 201 });
} });
`,
  );
  chmodSync(script, 0o644);
  const p = Bun.spawn(asUser([process.execPath, script, sock, log]), { env, stdin: "ignore", stderr: "inherit" });
  procs.push(p);
  await until(() => existsSync(sock), "the fake daemon's socket");
}

beforeAll(async () => {
  await ensureBinary();
  sh(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER]);
  uid = Number(sh(["id", "-u", USER]).trim());
  gid = Number(sh(["id", "-g", USER]).trim());
  chmodSync(home, 0o755);
  mkdirSync(userDir, { mode: 0o755 });
  chownSync(userDir, uid, gid);
  if (existsSync(SQUAT) || lstatSync(SQUAT, { throwIfNoEntry: false })) renameSync(SQUAT, saved);
});

afterAll(async () => {
  for (const p of procs) await stopProcess(p);
  rmrf(SQUAT);
  if (lstatSync(saved, { throwIfNoEntry: false })) renameSync(saved, SQUAT);
  rmrf(home);
  rmrf(`/tmp/edgeport-${uid}`);
  Bun.spawnSync(["userdel", USER], { env });
});

describe("root's CLI and a fake daemon another user serves", () => {
  const log = join(home, "fake-requests.log");
  const sock = `${SQUAT}/control.sock`;

  beforeAll(async () => {
    sh(asUser(["mkdir", "-m", "0755", SQUAT]));
    writeFileSync(log, "");
    chownSync(log, uid, gid);
    await fakeDaemon(sock, log);
  });

  test("by default root's CLI talks to /run/edgeport/api.sock, never to /tmp/edgeport-0 another user made", () => {
    const r = edgeport(["publish", "0.0.0.0:80:127.0.0.1:80"]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("no edgeport daemon answers at unix:///run/edgeport/api.sock");
    expect(readFileSync(log, "utf8")).toBe("");
  });

  test("named with --api, the other user's socket is refused before a request is sent", () => {
    for (const cmd of [["publish", "0.0.0.0:80:127.0.0.1:80"], ["ls"], ["status"], ["unpublish", "p-1"]]) {
      const r = edgeport([...cmd, "--api", `unix://${sock}`]);
      expect([cmd[0], r.code]).toEqual([cmd[0], 1]);
      expect(r.out).toContain(`refusing to send a request to ${sock}: ${sock} belongs to uid ${uid}`);
    }
    expect(readFileSync(log, "utf8")).toBe("");
  });

  test("root's daemon refuses to serve its API in the other user's directory, and chmods nothing", () => {
    const r = edgeport([
      "run",
      "--relay",
      "unix:///nonexistent.sock",
      "--engine",
      "none",
      "--firewall",
      "none",
      "--api",
      `unix://${SQUAT}/root.sock`,
    ]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`--api: ${SQUAT} belongs to uid ${uid}, not to uid 0 that runs edgeport or root`);
    expect(statSync(SQUAT).mode & 0o777).toBe(0o755);
    expect(existsSync(`${SQUAT}/root.sock`)).toBe(false);
  });
});

describe("a symlink planted where root's daemon puts its socket", () => {
  test("refused; the directory it points at keeps its mode", () => {
    rmrf(SQUAT);
    const target = join(userDir, "target");
    sh(asUser(["mkdir", "-m", "0755", target]));
    sh(asUser(["ln", "-s", target, SQUAT]));
    const r = edgeport([
      "run",
      "--relay",
      "unix:///nonexistent.sock",
      "--engine",
      "none",
      "--firewall",
      "none",
      "--api",
      `unix://${SQUAT}/control.sock`,
    ]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`belongs to uid ${uid}`);
    expect(statSync(target).mode & 0o777).toBe(0o755);
    expect(existsSync(join(target, "control.sock"))).toBe(false);
  });
});

describe("the unprivileged user's own daemon and its default directory /tmp/edgeport-UID", () => {
  const dir = () => `/tmp/edgeport-${uid}`;
  const daemonArgs = ["run", "--relay", "unix:///nonexistent.sock", "--engine", "none", "--firewall", "none"];
  const asUserRun = () => run(asUser([EDGEPORT, ...daemonArgs]));

  test("a directory another uid (here root) made first is refused, naming it and the fix", () => {
    rmrf(dir());
    mkdirSync(dir(), { mode: 0o700 });
    const r = asUserRun();
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${dir()} belongs to uid 0, not to uid ${uid} that runs edgeport`);
    expect(r.out).toContain(`sudo rm -r ${dir()}`);
  });

  test("a symlink is refused, and not followed", () => {
    rmrf(dir());
    const target = mkdtempSync("/tmp/edgeport-hostile-target-");
    chownSync(target, uid, gid);
    chmodSync(target, 0o755);
    symlinkSync(target, dir());
    const r = asUserRun();
    rmrf(target);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${dir()} is a symbolic link`);
  });

  test("its own directory open to others is refused with the chmod; made afresh it works, owner-only", async () => {
    rmrf(dir());
    sh(asUser(["mkdir", "-m", "0755", dir()]));
    const r = asUserRun();
    expect(r.code).toBe(1);
    expect(r.out).toContain(`(mode 0755); the control socket's directory must be owner-only: chmod 700 ${dir()}`);
    rmrf(dir());
    const p = Bun.spawn(asUser([EDGEPORT, ...daemonArgs]), {
      env,
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
    });
    procs.push(p);
    try {
      await until(() => existsSync(`${dir()}/control.sock`), "the user's control socket");
      expect(statSync(dir()).mode & 0o777).toBe(0o700);
      expect(statSync(dir()).uid).toBe(uid);
      // the user's CLI reaches it; root's CLI may too (a root-owned or own socket is trusted)
      const ls = run(asUser([EDGEPORT, "ls"]));
      expect([ls.code, ls.out.trim()]).toEqual([0, "no ports published"]);
    } finally {
      await stopProcess(p);
    }
  });
});

describe("a reply of the wrong shape from whatever answers (root's own fake, so the owner check passes)", () => {
  test("is an error message naming the API, not a crash", async () => {
    const dir = mkdtempSync("/tmp/edgeport-hostile-reply-");
    const sock = join(dir, "control.sock");
    const server = Bun.serve({
      unix: sock,
      fetch: (req) =>
        new URL(req.url).pathname === "/v1/ports" && req.method === "GET"
          ? Response.json([{ nope: 1 }])
          : req.method === "DELETE"
            ? new Response("<html>not json</html>", { status: 500 })
            : Response.json({ pipe: "up" }),
    });
    try {
      for (const cmd of [["ls"], ["status"], ["publish", "8080:127.0.0.1:80"], ["unpublish", "p-1"]]) {
        const r = await edgeportAsync([...cmd, "--api", `unix://${sock}`]);
        expect([cmd[0], r.code]).toEqual([cmd[0], 1]);
        expect(r.out).toContain("a reply that is not edgeport's API");
        expect(r.out).not.toMatch(/TypeError|\n\s+at /);
      }
    } finally {
      server.stop(true);
      rmrf(dir);
    }
  });
});

describe("token and secret files another user could read or write (ssh's rule)", () => {
  const port = freePortRange(1);

  test("root's daemon refuses a 0644 API token, naming the file and the chmod", () => {
    const token = writeToken(join(home, "api-token"), "api-token-0123456789abcdef");
    chmodSync(token, 0o644);
    const r = edgeport([
      "run",
      "--relay",
      "unix:///nonexistent.sock",
      "--engine",
      "none",
      "--firewall",
      "none",
      "--api",
      `tcp://127.0.0.1:${port}`,
      "--api-token-file",
      token,
    ]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`--api-token-file: refusing ${token} may be read by group or others (mode 0644)`);
    expect(r.out).toContain(`chmod 600 ${token}`);
  });

  test("root refuses a secret file the other user owns, even at 0600", () => {
    const token = writeToken(join(home, "users-token"), "correct horse battery staple");
    chownSync(token, uid, gid);
    const r = edgeport(["forwarder", "--listen", `unix://${join(home, "fwd.sock")}`, "--token-file", token]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`--token-file: refusing ${token} belongs to uid ${uid}, not to you (uid 0) or root`);
  });

  test("the user refuses a world-readable file of root's; root's 0600 file is not theirs to read at all", () => {
    const token = writeToken(join(home, "root-token"), "correct horse battery staple");
    chmodSync(token, 0o604);
    const wide = run(
      asUser([EDGEPORT, "publish", "--relay", "unix:///nonexistent.sock", "--token-file", token, "8080:127.0.0.1:80"]),
    );
    expect(wide.code).toBe(1);
    expect(wide.out).toContain(`refusing ${token} may be read by group or others (mode 0604)`);
    chmodSync(token, 0o600);
    const closed = run(asUser([EDGEPORT, "ls", "--api", "tcp://127.0.0.1:1", "--api-token-file", token]));
    expect(closed.code).toBe(2);
    expect(closed.out).toContain(`--api-token-file: cannot read ${token}: EACCES`);
  });
});
