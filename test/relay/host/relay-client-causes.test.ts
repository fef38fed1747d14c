/**
 * Logs that keep the cause (issue 16, defect 10): a host redialling with a wrong pipe secret is
 * refused every time; the forwarder says so once per interval with a count, and the host keeps
 * saying why (in its log and in its state) instead of "the peer closed the pipe during the handshake".
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola";
import { createDialPolicy } from "../../../src/relay/forwarder/dial-policy.ts";
import { startForwarder } from "../../../src/relay/forwarder/forwarder.ts";
import { createRelayClient } from "../../../src/relay/host/relay-client.ts";
import { parseTransportUrl } from "../../../src/relay/transports/url.ts";
import { until } from "../../helpers/until.ts";

const dir = mkdtempSync(join(tmpdir(), "edgeport-causes-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  const lines: { type: string; msg: string }[] = [];
  // throttle 0: every line as logged (consola folds identical lines less than 1 s apart; a redial
  // once a second, as in the field, is never folded)
  const log = createConsola({
    level: 4,
    throttle: 0,
    reporters: [{ log: (l) => void lines.push({ type: l.type, msg: l.args.join(" ") }) }],
  });
  return { lines, log, warns: () => lines.filter((l) => l.type === "warn").map((l) => l.msg) };
}

test("a wrong secret, redialled 50 times: a few forwarder warnings with counts; the host keeps the cause", async () => {
  const vm = capture();
  const host = capture();
  const fwd = startForwarder({
    listen: parseTransportUrl(`unix://${join(dir, "fwd.sock")}`, "listen"),
    policy: createDialPolicy({ allow: [] }),
    pipe: { secret: new TextEncoder().encode("the right secret, long enough") },
    log: vm.log,
    repeatLogMs: 300,
  });
  const relay = createRelayClient({
    url: parseTransportUrl(fwd.address, "connect"),
    pipe: { secret: new TextEncoder().encode("a wrong secret, long enough too") },
    log: host.log,
    backoffMinMs: 5,
    backoffMaxMs: 5,
  });
  try {
    const refusals = () => vm.lines.filter((l) => /pipe refused: authentication failed/.test(l.msg)).length;
    await until(() => refusals() >= 50, "50 refused redials", 10_000);
    // the forwarder: the first at once, then at most one per 300 ms, each with the count held back
    const warned = vm.warns();
    expect(warned[0]).toBe("pipe refused: authentication failed: the pipe secrets differ");
    expect(warned.length).toBeLessThan(refusals() / 5);
    expect(warned.slice(1).every((w) => /secrets differ \(and \d+ more like it in the last \d+ s\)$/.test(w))).toBe(
      true,
    );
    // the host: whichever side saw it, the cause is the secret, in every line and in its state
    expect(host.warns().length).toBeGreaterThanOrEqual(1);
    expect(host.warns().length).toBeLessThanOrEqual(2);
    for (const w of host.warns()) expect(w).toMatch(/^pipe down: authentication failed: .*secret/);
    expect(host.lines.some((l) => /during the handshake/.test(l.msg))).toBe(false);
    expect(relay.lastFailure).toMatch(/^authentication failed: .*secret/);
  } finally {
    relay.close();
    fwd.close();
  }
});

test("the host's state: lastFailure while the pipe is down, null once it is up", async () => {
  const path = join(dir, "later.sock");
  const relay = createRelayClient({
    url: parseTransportUrl(`unix://${path}`, "connect"),
    log: capture().log,
    backoffMinMs: 5,
    backoffMaxMs: 20,
  });
  try {
    await until(() => relay.lastFailure !== null, "the first failure");
    const fwd = startForwarder({
      listen: parseTransportUrl(`unix://${path}`, "listen"),
      policy: createDialPolicy({ allow: [] }),
      log: capture().log,
    });
    try {
      await relay.session(3000);
      expect(relay.lastFailure).toBeNull();
    } finally {
      fwd.close();
    }
  } finally {
    relay.close();
  }
});
