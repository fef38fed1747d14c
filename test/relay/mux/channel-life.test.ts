/**
 * A channel's life as a table (issue 16, defect 2): Shutdown (FIN), Close and reset arriving in
 * every state from either side, and the pipe lost, through the whole relay on real sockets (the
 * host's TCP listener and relay client, the forwarder on a unix socket, a loopback echo target).
 * Whatever the order, both ends' sockets and both channels are freed within 1 s.
 */
import { afterAll, beforeAll, beforeEach, describe, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola";
import { openTcpListener, type TcpListener } from "../../../src/publisher/tcp-listener.ts";
import { type Forwarder, startForwarder } from "../../../src/relay/forwarder/forwarder.ts";
import { createRelayClient, type RelayClient } from "../../../src/relay/host/relay-client.ts";
import type { Channel } from "../../../src/relay/mux/channel.ts";
import type { ChannelState } from "../../../src/relay/mux/channel-state.ts";
import { parseTransportUrl } from "../../../src/relay/transports/url.ts";
import { until } from "../../helpers/until.ts";
import { type Act, act, client, gatePolicy, targetServer } from "./life-bed.ts";

const quiet = createConsola({ level: -999 });
const dir = mkdtempSync(join(tmpdir(), "edgeport-life-"));
const gate = gatePolicy();
let target: ReturnType<typeof targetServer>;
let fwd: Forwarder;
let relay: RelayClient;
let listener: TcpListener;

beforeAll(async () => {
  target = targetServer();
  fwd = startForwarder({
    listen: parseTransportUrl(`unix://${join(dir, "fwd.sock")}`, "listen"),
    policy: gate.policy,
    log: quiet,
  });
  relay = createRelayClient({ url: parseTransportUrl(fwd.address, "connect"), log: quiet, backoffMinMs: 10 });
  await relay.session(5000);
  listener = openTcpListener(
    { hostIp: "127.0.0.1", hostPort: 0, targetIp: "127.0.0.1", targetPort: target.port, proto: "tcp" },
    relay,
    { log: quiet, pipeWaitMs: 5000, quiet: true },
  );
});

afterAll(async () => {
  await listener.close(0);
  relay.close();
  fwd.close();
  target.stop();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  gate.open();
  target.hold = false;
  target.onAccept = null;
  // what a failed cell left behind must not fail the next ones: a fresh pipe, no target sockets
  if (hostChannel() || fwdChannel()) lostPipe();
  for (const s of target.socks) s.terminate();
  await until(() => !hostChannel() && !fwdChannel() && target.socks.size === 0, "a clean start", 2000);
  await relay.session(5000);
});

const hostChannel = (): Channel | undefined => [...(relay.current?.channels.values() ?? [])][0];
const fwdChannel = (): Channel | undefined => [...fwd.sessions].flatMap((s) => [...s.channels.values()])[0];
const lostPipe = () => relay.current?.close("the test cut the pipe");

type Side = "client" | "target" | "pipe";
type Start = "dialling" | "dial-failed" | "open" | "half-closed by the client" | "half-closed by the target";
const ACTS: Act[] = ["fin", "close", "reset"];

/** Every (state, side, act) that can happen; a side that has already sent its FIN only closes or resets. */
const CELLS: [Start, Side, Act | "lost"][] = [
  ...ACTS.map((a): [Start, Side, Act] => ["dialling", "client", a]),
  ...ACTS.map((a): [Start, Side, Act] => ["dialling", "target", a]),
  ["dialling", "pipe", "lost"],
  ...ACTS.map((a): [Start, Side, Act] => ["dial-failed", "client", a]),
  ...ACTS.map((a): [Start, Side, Act] => ["open", "client", a]),
  ...ACTS.map((a): [Start, Side, Act] => ["open", "target", a]),
  ["open", "pipe", "lost"],
  ...(["close", "reset"] as Act[]).map((a): [Start, Side, Act] => ["half-closed by the client", "client", a]),
  ...ACTS.map((a): [Start, Side, Act] => ["half-closed by the client", "target", a]),
  ["half-closed by the client", "pipe", "lost"],
  ...ACTS.map((a): [Start, Side, Act] => ["half-closed by the target", "client", a]),
  ...(["close", "reset"] as Act[]).map((a): [Start, Side, Act] => ["half-closed by the target", "target", a]),
  ["half-closed by the target", "pipe", "lost"],
];

const expectStates = async (host: ChannelState, vm: ChannelState) =>
  until(() => hostChannel()?.state === host && fwdChannel()?.state === vm, `host ${host}, forwarder ${vm}`, 2000);

describe("every event in every state, edgeport host and edgeport forwarder", () => {
  test.each(CELLS)("%s: %s %s -> both ends freed within 1 s", async (start, side, what) => {
    const early = start === "dialling" || start === "dial-failed";
    gate.held = early;
    // the target acts as it accepts: the dial ends and the event follows at once
    if (early && side === "target") target.onAccept = (s) => act(s, what as Act);
    const c = await client(listener.port);
    if (early) {
      await until(() => gate.waiting.length === 1, "the forwarder dialling");
      await expectStates("opening", "dialling");
    } else {
      c.socket.write("hello");
      await until(() => c.text === "hello", "the echo");
      await expectStates("open", "open");
      if (start === "half-closed by the client") {
        target.hold = true;
        c.socket.shutdown();
        await until(() => target.gotFin.size === 1, "the target got the client's FIN");
        await expectStates("half-closed", "half-closed");
      } else if (start === "half-closed by the target") {
        c.hold = true;
        for (const s of target.socks) s.shutdown();
        await until(() => c.gotFin, "the client got the target's FIN");
        await expectStates("half-closed", "half-closed");
      }
    }
    if (side === "pipe") lostPipe();
    else if (side === "client") {
      act(c.socket, what as Act);
      // the host saw it before the dial ends (a FIN waits there for the forwarder's Window)
      if (early) await until(() => !!hostChannel()?.facts.localEnded || hostChannel()?.closed !== false, "seen");
    } else if (!early) for (const s of target.socks) act(s, what as Act);
    if (early) gate.open(start === "dial-failed" ? { ok: false, reason: "refused by the test" } : { ok: true });
    target.release();
    c.release();
    const freed = () =>
      c.closed && target.socks.size === 0 && listener.connections === 0 && !hostChannel() && !fwdChannel();
    await until(freed, "both ends freed", 1000).catch(() => {
      const left = `client ${c.closed ? "closed" : "open"}, target sockets ${target.socks.size}, host channel ${hostChannel()?.state ?? "freed"}, forwarder channel ${fwdChannel()?.state ?? "freed"}`;
      throw new Error(`not freed within 1 s: ${left}`);
    });
  });
});
