/** Bind failures name their cause: at the file descriptor limit that is EMFILE (Bun's listen error carries no code there). */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { bindError } from "../../src/publisher/bind-error.ts";

test("binding at the fd limit is E_FD_LIMIT naming EMFILE and the limit, for TCP and UDP (was EIO)", () => {
  const script = join(import.meta.dir, "fixtures", "bind-at-limit.ts");
  const r = Bun.spawnSync(["sh", "-c", `ulimit -n 64; exec "$@"`, "sh", process.execPath, script], {
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(r.stderr.toString()).toBe("");
  const [tcp, udp] = JSON.parse(r.stdout.toString()) as { code: string; message: string }[];
  for (const e of [tcp!, udp!]) {
    expect(e.code).toBe("E_FD_LIMIT");
    expect(e.message).toMatch(
      /^cannot listen on 127\.0\.0\.1:0: too many open files: the process is at its limit of 64 file descriptors \(RLIMIT_NOFILE\) \(EMFILE\)$/,
    );
  }
});

test.each([
  ["EADDRINUSE", "E_PORT_IN_USE", /already in use/],
  ["EADDRNOTAVAIL", "E_ADDR_NOT_AVAILABLE", /not assigned/],
  ["EACCES", "E_PERMISSION", /ports below 1024/],
  ["EINVAL", "E_DIAL", /EINVAL/],
])("%s is %s", (errno, code, re) => {
  const e = bindError("127.0.0.1:80", Object.assign(new Error("x"), { code: errno }));
  expect(e.code).toBe(code as never);
  expect(e.message).toMatch(re);
});
