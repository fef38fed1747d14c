import { setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// bunfig.toml test timeouts are not applied by Bun 1.4: set them here.
// e2e tests move 100 MiB through two hops and start containers.
setDefaultTimeout(Number(process.env.EDGEPORT_TEST_TIMEOUT_MS ?? 60_000));

// No unhandled rejection anywhere (issue 16): one is a bug. bun test 1.4 already fails the test
// that is running (or reports an "error between tests" and exits 1) without calling listeners;
// this one is the backstop for any that reaches the process: it names itself and fails the run.
process.on("unhandledRejection", (reason) => {
  const e = reason instanceof Error ? reason : new Error(`non-Error rejection: ${String(reason)}`);
  process.stderr.write(`\nFATAL in the test suite: an unhandled promise rejection\n${e.stack ?? e.message}\n`);
  process.exitCode = 1;
  throw e;
});

// Daemons the tests start keep their ad-hoc ports (issue 20, item 3) in a directory of this run,
// not in the machine's /var/lib/edgeport; each daemon's file is named by its control API.
if (!process.env.EDGEPORT_STATE_DIR) {
  const stateDir = mkdtempSync(join(tmpdir(), "edgeport-test-state-"));
  process.env.EDGEPORT_STATE_DIR = stateDir;
  process.on("exit", () => rmSync(stateDir, { recursive: true, force: true }));
}
