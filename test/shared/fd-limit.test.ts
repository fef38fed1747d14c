/** RLIMIT_NOFILE through libc, checked against what the kernel says in /proc/self/limits. */
import { expect, test } from "bun:test";
import { closeSync, openSync, readFileSync } from "node:fs";
import { atFdLimit, openFdCount, raiseFdLimit, readFdLimit } from "../../src/shared/fd-limit.ts";

const kernel = () => {
  const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))!;
  return { soft: Number(m[1]), hard: Number(m[2]) };
};

test("the limit read through libc is the kernel's; raising leaves soft = hard", () => {
  expect(readFdLimit()).toMatchObject(kernel());
  const raised = raiseFdLimit()!;
  expect(raised.soft).toBe(raised.hard);
  expect(kernel()).toEqual({ soft: raised.soft, hard: raised.hard });
});

test("the open count follows descriptors opened and closed; not at the limit here", () => {
  const before = openFdCount()!;
  const fds = Array.from({ length: 10 }, () => openSync("/dev/null", "r"));
  expect(openFdCount()).toBe(before + 10);
  for (const fd of fds) closeSync(fd);
  expect(openFdCount()).toBe(before);
  expect(atFdLimit()).toBe(false);
});

test("a process that used up its descriptors is at its limit, and says so", () => {
  const code = `
    import { openSync } from "node:fs";
    import { atFdLimit, openFdCount, readFdLimit } from ${JSON.stringify(`${import.meta.dir}/../../src/shared/fd-limit.ts`)};
    const limit = readFdLimit();
    try { for (;;) openSync("/dev/null", "r"); } catch {}
    console.log(JSON.stringify({ limit: limit.soft, at: atFdLimit(), open: openFdCount() }));`;
  const r = Bun.spawnSync(["sh", "-c", 'ulimit -n 48; exec "$@"', "sh", process.execPath, "-e", code], {
    stdout: "pipe",
  });
  expect(JSON.parse(r.stdout.toString())).toEqual({ limit: 48, at: true, open: 48 });
});
