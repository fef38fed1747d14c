/** dockerd's status pipe (fd 3), written to a real descriptor: one report, then the descriptor is closed. */
import { afterEach, expect, test } from "bun:test";
import { fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { STATUS_FD, statusPipe } from "../../../../src/relay/forwarder/docker-proxy/status-pipe.ts";

const dir = mkdtempSync("/tmp/edgeport-status-");
afterEach(() => rmSync(join(dir, "status"), { force: true }));

/** a real descriptor standing in for dockerd's pipe, and what was written to it */
const descriptor = () => {
  const file = join(dir, "status");
  return { fd: openSync(file, "w"), written: () => readFileSync(file, "utf8") };
};
const isOpen = (fd: number) => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

test("dockerd reads the status on fd 3", () => expect(STATUS_FD).toBe(3));

test.each<[string, (p: ReturnType<typeof statusPipe>) => void, string]>([
  ["published: 0", (p) => p.ready(), "0\n"],
  ["failed: 1 and the reason", (p) => p.failed("0.0.0.0:8080: address in use"), "1\n0.0.0.0:8080: address in use"],
])("%s, then the descriptor is closed and later reports are ignored", (_name, report, text) => {
  const d = descriptor();
  const pipe = statusPipe(d.fd);
  report(pipe);
  expect(d.written()).toBe(text);
  expect(isOpen(d.fd)).toBe(false);
  pipe.failed("a later failure");
  pipe.ready();
  expect(d.written()).toBe(text);
});

test("run by hand, without the descriptor: nothing is written and nothing throws", () => {
  let fd = 1000;
  while (isOpen(fd)) fd++;
  expect(() => statusPipe(fd).failed("no dockerd")).not.toThrow();
  expect(isOpen(fd)).toBe(false);
});
