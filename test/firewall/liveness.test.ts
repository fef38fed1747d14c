/**
 * Issue 16, defect 9: a rule's owner is judged alive by its pid AND the pid's start time, so a
 * reused pid does not keep a dead instance's rules forever. /proc reads are injected here; the
 * last test uses this machine's real /proc.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createConsola } from "consola";
import { createFirewall, isAlive } from "../../src/firewall/index.ts";
import { isAliveWith, type LivenessDeps, parseStartTime, processStartTime } from "../../src/firewall/liveness.ts";
import { ownerTag, parseOwnerTag } from "../../src/firewall/plan.ts";
import type { Backend, OwnedRule } from "../../src/firewall/types.ts";

// a real /proc/PID/stat line (fields 3..52), with a comm holding a space and parentheses
const stat = (pid: number, comm: string, start: number) =>
  `${pid} (${comm}) S 1 ${pid} ${pid} 0 -1 4194560 1000 0 0 0 5 3 0 0 20 0 11 0 ${start} 123456789 2000 18446744073709551615 1 1 0 0 0 0 0 4096 17154 0 0 0 17 1 0 0 0 0 0`;

const esrch = Object.assign(new Error("kill ESRCH"), { code: "ESRCH" });
const eperm = Object.assign(new Error("kill EPERM"), { code: "EPERM" });

function procs(table: Record<number, { start: number; foreign?: boolean }>): LivenessDeps {
  return {
    kill(pid) {
      const p = table[pid];
      if (!p) throw esrch;
      if (p.foreign) throw eperm;
    },
    read: (path) => {
      const pid = Number(/^\/proc\/(\d+)\/stat$/.exec(path)?.[1]);
      const p = table[pid];
      return p ? stat(pid, "edge port) (x", p.start) : null;
    },
  };
}

describe("start time from /proc/PID/stat", () => {
  test.each([
    [stat(42, "edgeport", 987654), 987654],
    [stat(42, "a) b (c", 5), 5],
    [stat(42, "x", 0), 0],
    ["42 (truncated", null],
    ["42 (edgeport) S 1 2", null],
    ["", null],
  ])("%#", (text, want) => {
    expect(parseStartTime(text)).toBe(want);
  });

  test("read through the injected reader", () => {
    expect(processStartTime(7, procs({ 7: { start: 31337 } }))).toBe(31337);
    expect(processStartTime(8, procs({ 7: { start: 31337 } }))).toBeNull();
  });
});

describe("is the owner alive", () => {
  const deps = procs({ 100: { start: 5000 }, 200: { start: 9000, foreign: true } });
  test.each([
    ["same pid, same start time", 100, 5000, true],
    ["same pid, another start time: the pid was reused", 100, 4999, false],
    ["no such pid", 300, 5000, false],
    ["another user's process (EPERM), same start time", 200, 9000, true],
    ["another user's process (EPERM), pid reused", 200, 1, false],
    ["an old tag without a start time: kill(pid, 0) alone", 100, undefined, true],
    ["an old tag, no such pid", 300, undefined, false],
    ["pid 0 or less is never alive", 0, undefined, false],
  ] as const)("%s", (_, pid, start, want) => {
    expect(isAliveWith(deps, pid, start)).toBe(want);
  });

  test("no /proc (Windows, macOS): the start time cannot be compared, kill(pid, 0) decides", () => {
    const noProc: LivenessDeps = { ...deps, read: () => null };
    expect(isAliveWith(noProc, 100, 1)).toBe(true);
    expect(isAliveWith(noProc, 300, 1)).toBe(false);
  });
});

describe("owner tags carry the start time; old tags stay readable", () => {
  test("round trip", () => {
    const tag = ownerTag("0badcafe", 4242, "tcp:0.0.0.0:8080", 123456);
    expect(tag).toBe("edgeport:0badcafe:4242@123456:tcp:0.0.0.0:8080");
    expect(parseOwnerTag(tag)).toEqual({ instance: "0badcafe", pid: 4242, start: 123456, id: "tcp:0.0.0.0:8080" });
    // nft comments are at most 128 bytes: the longest rule id with the longest pid and start fits
    const longest = ownerTag("ffffffff", 4194304, "udp:[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65000-65535", 2 ** 53);
    expect(longest.length).toBeLessThanOrEqual(128);
  });
  test("a tag written before start times is read as before", () => {
    expect(parseOwnerTag("edgeport:0badcafe:4242:udp:[fd00::1]:53")).toEqual({
      instance: "0badcafe",
      pid: 4242,
      id: "udp:[fd00::1]:53",
    });
    for (const t of ["edgeport:0badcafe:4242@:tcp:1.2.3.4:5", "edgeport:0badcafe:4242@x:tcp:1.2.3.4:5"])
      expect(parseOwnerTag(t)).toBeNull();
  });
});

describe("prune with this machine's /proc", () => {
  const quiet = createConsola({ level: -999 });
  const ownStart = parseStartTime(readFileSync(`/proc/${process.pid}/stat`, "utf8"))!;

  function backendWith(rules: OwnedRule[]): { b: Backend; present: OwnedRule[]; tagged: OwnedRule[] } {
    const present = [...rules];
    const tagged: OwnedRule[] = [];
    const b: Backend = {
      name: "nftables",
      list: async () => [...present],
      async apply(add, remove, own) {
        for (const r of remove) present.splice(present.indexOf(r), 1);
        const added = add.map((r) => ({ ...own, id: r.id, where: "x", ref: r.id }));
        tagged.push(...added);
        return added;
      },
    };
    return { b, present, tagged };
  }

  test("a rule whose pid now belongs to another process (another start time) is pruned", async () => {
    // the test runner's pid is alive; the rule says it was written by a process started earlier
    const reused: OwnedRule = {
      instance: "aaaaaaaa",
      pid: process.pid,
      start: ownStart - 1,
      id: "tcp:1.2.3.4:1",
      where: "x",
      ref: 1,
    };
    const live: OwnedRule = {
      instance: "bbbbbbbb",
      pid: process.pid,
      start: ownStart,
      id: "tcp:1.2.3.4:2",
      where: "x",
      ref: 2,
    };
    const { b, present } = backendWith([reused, live]);
    const fw = createFirewall({ backend: b, log: quiet, instance: "0badcafe", pid: 1 });
    expect((await fw.prune()).map((r) => r.id)).toEqual(["tcp:1.2.3.4:1"]);
    expect(present.map((r) => r.id)).toEqual(["tcp:1.2.3.4:2"]);
    expect(isAlive(process.pid, ownStart)).toBe(true);
    expect(isAlive(process.pid, ownStart + 1)).toBe(false);
  });

  test("the rules an instance writes carry its pid and start time", async () => {
    const { b, tagged } = backendWith([]);
    const fw = createFirewall({ backend: b, log: quiet, instance: "0badcafe", pid: process.pid });
    fw.sync([{ proto: "tcp", address: "0.0.0.0", port: 8080 }]);
    await fw.settled();
    expect(tagged.map((r) => [r.pid, r.start])).toEqual([[process.pid, ownStart]]);
    await fw.close();
  });
});
