import { expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { createConsola } from "consola";
import { describeUnhandled, logUnhandled } from "../../src/cli/unhandled.ts";

test("an unhandled rejection and an uncaught exception are one error line each: kind, name, code, message, frame", () => {
  const lines: { type: string; msg: string }[] = [];
  const log = createConsola({
    level: 3,
    reporters: [{ log: (l) => void lines.push({ type: l.type, msg: l.args.join(" ") }) }],
  });
  const proc = new EventEmitter();
  logUnhandled(proc, log);
  const eacces = Object.assign(new Error("EACCES: permission denied, connect"), { code: "EACCES" });
  proc.emit("unhandledRejection", eacces);
  proc.emit("uncaughtException", new TypeError("undefined is not an object"));
  proc.emit("unhandledRejection", "a string");
  expect(lines.map((l) => l.type)).toEqual(["error", "error", "error"]);
  expect(lines[0]!.msg).toMatch(
    /^internal error \(unhandled rejection\): Error \[EACCES\]: EACCES: permission denied, connect \(at .*unhandled\.test\.ts:\d+:\d+\)+$/,
  );
  expect(lines[1]!.msg).toMatch(/^internal error \(uncaught exception\): TypeError: undefined is not an object \(at /);
  expect(lines[2]!.msg).toBe("internal error (unhandled rejection): a string");
  expect(lines.every((l) => !l.msg.includes("\n"))).toBe(true);
});

test("an error without a stack is still one line", () => {
  const e = new Error("no stack");
  e.stack = undefined;
  expect(describeUnhandled("uncaught exception", e)).toBe("internal error (uncaught exception): Error: no stack");
});
