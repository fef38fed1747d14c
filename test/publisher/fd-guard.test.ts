/** The fd guard with a scripted limit and open count, and stand-in listeners; the real one is test/e2e/fd-limit. */
import { afterEach, expect, test } from "bun:test";
import { createConsola, type LogObject } from "consola";
import { createFdGuard, reserveOf } from "../../src/publisher/fd-guard.ts";
import { until } from "../helpers/until.ts";

const undo: (() => void)[] = [];
afterEach(() => {
  for (const u of undo.splice(0)) u();
});

function setup(o: { pollMs?: number } = {}) {
  const lines: { level: number; msg: string }[] = [];
  const log = createConsola({
    level: 5,
    reporters: [{ log: (x: LogObject) => lines.push({ level: x.level, msg: x.args.join(" ") }) }],
  });
  const fds = { open: 10, counted: 0 };
  const guard = createFdGuard({
    log,
    limit: () => ({ soft: 100, hard: 4096 }),
    count: () => {
      fds.counted++;
      return fds.open;
    },
    minBackoffMs: 5,
    maxBackoffMs: 20,
    pollMs: o.pollMs ?? 60_000,
  });
  const listener = (failResumes = 0) => {
    const l = {
      listening: true,
      pauses: 0,
      failResumes,
      pause() {
        l.listening = false;
        l.pauses++;
      },
      resume() {
        if (l.failResumes-- > 0) return false;
        l.listening = true;
        return true;
      },
    };
    undo.push(guard.register(l));
    return l;
  };
  return { guard, fds, lines, listener };
}

test("the reserve is 1/16 of the limit, between 8 and 64", () => {
  expect([reserveOf(64), reserveOf(256), reserveOf(1024), reserveOf(1 << 20)]).toEqual([8, 16, 64, 64]);
});

test("an accepted fd near the limit pauses every listener with one warning; enough free fds resume them with one line", async () => {
  const { guard, fds, lines, listener } = setup();
  const a = listener();
  const b = listener(2); // cannot listen again twice (the port briefly taken): tried again
  guard.accepted(50);
  expect(a.listening).toBe(true);
  fds.open = 93;
  guard.accepted(92); // limit 100, reserve 8
  guard.accepted(93);
  expect([a.listening, b.listening]).toEqual([false, false]);
  expect(guard.state()).toEqual({ limit: 100, hardLimit: 4096, open: 93, exhausted: true });
  const c = listener(); // one registered while paused waits too
  expect(c.listening).toBe(false);
  expect(lines).toHaveLength(1);
  expect(lines[0]!.msg).toBe(
    "out of file descriptors: 93 open of the limit 100 (RLIMIT_NOFILE; the hard limit is 4096: raise the soft one with ulimit -n); accepting is paused until connections close",
  );
  fds.open = 85; // still within twice the reserve: stays paused, nothing tries to listen
  const counted = fds.counted;
  await until(() => fds.counted >= counted + 3, "three more checks");
  expect(guard.state()?.exhausted).toBe(true);
  expect(b.failResumes).toBe(2);
  fds.open = 40;
  await until(() => !guard.state()!.exhausted, "resumed");
  expect([a.listening, b.listening, c.listening]).toEqual([true, true, true]);
  expect(a.pauses).toBe(1);
  expect(lines).toHaveLength(2);
  expect(lines[1]!.msg).toMatch(
    /^file descriptors available again \(40 open of 100\): accepting resumed after \d+\.\d s$/,
  );
});

test("fds taken by something else are seen by the poll", async () => {
  const { guard, fds, listener } = setup({ pollMs: 5 });
  const a = listener();
  fds.open = 99;
  await until(() => !a.listening, "paused by the poll");
  fds.open = 10;
  await until(() => a.listening, "resumed");
  expect(guard.state()?.exhausted).toBe(false);
});
