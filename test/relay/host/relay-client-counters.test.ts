/**
 * Issue 20, item 9: the relay client counts what /metrics shows of the pipe, on a real forwarder
 * over a unix socket: a lost session is a reset, each time the pipe comes back a reconnect, a
 * dial that fails a failure; the client closing its own session counts as none of them.
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

const dir = mkdtempSync(join(tmpdir(), "edgeport-counters-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const log = createConsola({ level: -999 });

test("resets, reconnects and failures as the forwarder goes away and comes back", async () => {
  const path = join(dir, "fwd.sock");
  const forwarder = () =>
    startForwarder({
      listen: parseTransportUrl(`unix://${path}`, "listen"),
      policy: createDialPolicy({ allow: [] }),
      log,
    });
  let fwd = forwarder();
  const relay = createRelayClient({
    url: parseTransportUrl(`unix://${path}`, "connect"),
    log,
    backoffMinMs: 5,
    backoffMaxMs: 20,
  });
  try {
    await until(() => relay.current !== null, "the pipe up");
    expect(relay.counters()).toEqual({ reconnects: 0, resets: 0, failures: 0 });
    fwd.close();
    await until(() => relay.counters().failures >= 2, "dials failing while the forwarder is gone");
    expect(relay.counters().resets).toBe(1);
    expect(relay.counters().reconnects).toBe(0);
    fwd = forwarder();
    await until(() => relay.current !== null, "the pipe up again");
    expect(relay.counters()).toMatchObject({ reconnects: 1, resets: 1 });
  } finally {
    relay.close();
    fwd.close();
  }
  expect(relay.counters()).toMatchObject({ reconnects: 1, resets: 1 }); // our own close is not a reset
});
