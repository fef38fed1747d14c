/**
 * The channel life table against a plain vpnkit peer (issue 16, defect 2), on real sockets: a raw
 * vpnkit host opening channels to edgeport's forwarder, and edgeport's host (TCP listener and
 * relay client) opening channels to a raw vpnkit forwarder. The raw end behaves like vpnkit: it
 * drops a Shutdown or Data that comes before its Window, answers Shutdown with Shutdown and Close.
 * Both ends' sockets and channels are freed within 1 s, and edgeport sends nothing but Close
 * before the peer's first Window.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "bun";
import { createConsola } from "consola";
import { openTcpListener, type TcpListener } from "../../../src/publisher/tcp-listener.ts";
import { type Forwarder, startForwarder } from "../../../src/relay/forwarder/forwarder.ts";
import { createRelayClient, type RelayClient } from "../../../src/relay/host/relay-client.ts";
import type { Channel } from "../../../src/relay/mux/channel.ts";
import { encodeData, encodeOpen } from "../../../src/relay/mux/codec.ts";
import { parseTransportUrl } from "../../../src/relay/transports/url.ts";
import { until } from "../../helpers/until.ts";
import { type Act, act, client, gatePolicy, type RawVpnkit, rawVpnkit, targetServer } from "./life-bed.ts";

const quiet = createConsola({ level: -999 });
const dir = mkdtempSync(join(tmpdir(), "edgeport-life-vpnkit-"));
const ACTS: Act[] = ["fin", "close", "reset"];
type PeerAct = "shutdown" | "close" | "lost";
const PEER_ACTS: PeerAct[] = ["shutdown", "close", "lost"];

function peerAct(raw: RawVpnkit, sock: Socket<unknown>, id: number, a: PeerAct): void {
  if (a === "shutdown") raw.shutdown(id);
  else if (a === "close") raw.close(id);
  else sock.terminate();
}

async function freedWithin1s(what: () => string, freed: () => boolean): Promise<void> {
  await until(freed, "freed", 1000).catch(() => {
    throw new Error(`not freed within 1 s: ${what()}`);
  });
}

type Cell<S> = [S, "local" | "peer", Act | PeerAct];
function cells<S extends string>(table: [S, (Act | PeerAct)[], (Act | PeerAct)[]][]): Cell<S>[] {
  return table.flatMap(([s, local, peer]) => [
    ...local.map((a): Cell<S> => [s, "local", a]),
    ...peer.map((a): Cell<S> => [s, "peer", a]),
  ]);
}

describe("a raw vpnkit host opens channels to edgeport's forwarder", () => {
  const gate = gatePolicy();
  let target: ReturnType<typeof targetServer>;
  let fwd: Forwarder;
  beforeAll(() => {
    target = targetServer();
    fwd = startForwarder({
      listen: parseTransportUrl(`unix://${join(dir, "f.sock")}`, "listen"),
      policy: gate.policy,
      log: quiet,
    });
  });
  afterAll(() => {
    fwd.close();
    target.stop();
  });
  beforeEach(async () => {
    gate.open();
    target.hold = false;
    target.onAccept = null;
    for (const s of fwd.sessions) s.close("next cell");
    for (const s of target.socks) s.terminate();
    await until(() => fwd.sessions.size === 0 && target.socks.size === 0, "a clean start", 2000);
  });
  const fwdChannel = (): Channel | undefined => [...fwd.sessions].flatMap((s) => [...s.channels.values()])[0];

  // states as the forwarder sees them; "local" is the target's socket, "peer" the raw vpnkit host
  const CELLS = cells<"dialling" | "dial-failed" | "open" | "half-closed by the peer" | "half-closed by the target">([
    ["dialling", ACTS, PEER_ACTS],
    ["dial-failed", [], PEER_ACTS],
    ["open", ACTS, PEER_ACTS],
    ["half-closed by the peer", ACTS, ["close", "lost"]],
    ["half-closed by the target", ["close", "reset"], PEER_ACTS],
  ]);

  test.each(CELLS)("%s: %s %s -> both ends freed within 1 s", async (start, side, what) => {
    const early = start === "dialling" || start === "dial-failed";
    gate.held = early;
    if (early && side === "local") target.onAccept = (s) => act(s, what as Act);
    let raw!: RawVpnkit;
    const sock = await Bun.connect<unknown>({
      unix: join(dir, "f.sock"),
      socket: { data: (_s, d) => raw.feed(d), close() {}, error() {} },
    });
    raw = rawVpnkit(sock);
    const id = 7;
    raw.send(encodeOpen(id, { proto: "tcp", ip: Uint8Array.of(127, 0, 0, 1), port: target.port }));
    raw.window(id);
    if (early) {
      await until(() => gate.waiting.length === 1 && fwdChannel()?.state === "dialling", "the forwarder dialling");
    } else {
      await until(() => raw.got(id, "window") && target.socks.size === 1, "the channel open");
      raw.send(encodeData(id, new TextEncoder().encode("hello")));
      await until(() => raw.got(id, "data"), "the echo");
      if (start === "half-closed by the peer") {
        target.hold = true;
        raw.shutdown(id);
        await until(() => target.gotFin.size === 1, "the target got the FIN");
      } else if (start === "half-closed by the target") {
        raw.autoReply = false;
        for (const s of target.socks) s.shutdown();
        await until(() => raw.got(id, "shutdown"), "the peer got the Shutdown");
      }
      await until(() => fwdChannel()?.state === (start === "open" ? "open" : "half-closed"), "the forwarder's state");
    }
    if (side === "peer") peerAct(raw, sock, id, what as PeerAct);
    else if (!early) for (const s of target.socks) act(s, what as Act);
    if (early) {
      // the frame reaches the forwarder while it dials; then the dial ends
      const seen = () => {
        const ch = fwdChannel();
        return what === "lost" ? fwd.sessions.size === 0 : !ch || ch.facts.shutdownReceived || ch.facts.closeReceived;
      };
      if (side === "peer") await until(seen, "the forwarder saw it");
      gate.open(start === "dial-failed" ? { ok: false, reason: "refused by the test" } : { ok: true });
    }
    target.release();
    raw.release(id);
    await freedWithin1s(
      () => `target sockets ${target.socks.size}, forwarder channel ${fwdChannel()?.state ?? "freed"}`,
      () => target.socks.size === 0 && !fwdChannel() && (what === "lost" || raw.got(id, "close")),
    );
    sock.terminate();
  });
});

describe("edgeport's host opens channels to a raw vpnkit forwarder", () => {
  const pipes: { raw: RawVpnkit; sock: Socket<unknown> }[] = [];
  let server: ReturnType<typeof Bun.listen<unknown>>;
  let relay: RelayClient;
  let listener: TcpListener;
  beforeAll(async () => {
    server = Bun.listen<{ raw: RawVpnkit }>({
      unix: join(dir, "v.sock"),
      socket: {
        open(sock) {
          sock.data = { raw: rawVpnkit(sock) };
          pipes.push({ raw: sock.data.raw, sock });
        },
        data: (s, d) => s.data.raw.feed(d),
        close() {},
        error() {},
      },
    }) as ReturnType<typeof Bun.listen<unknown>>;
    relay = createRelayClient({
      url: parseTransportUrl(`unix://${join(dir, "v.sock")}`, "connect"),
      log: quiet,
      backoffMinMs: 10,
    });
    await relay.session(5000);
    listener = openTcpListener(
      { hostIp: "127.0.0.1", hostPort: 0, targetIp: "172.17.0.2", targetPort: 80, proto: "tcp" },
      relay,
      { log: quiet, pipeWaitMs: 5000, quiet: true },
    );
  });
  afterAll(async () => {
    await listener.close(0);
    relay.close();
    server.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });
  const hostChannel = (): Channel | undefined => [...(relay.current?.channels.values() ?? [])][0];
  beforeEach(async () => {
    if (hostChannel()) relay.current?.close("next cell");
    pipes.at(-1)?.raw.early.splice(0);
    await until(() => !hostChannel() && listener.connections === 0, "a clean start", 2000);
    await relay.session(5000);
  });

  // states as the host sees them; "local" is the client's socket, "peer" the raw vpnkit forwarder
  const CELLS = cells<"opening" | "dial-failed" | "open" | "half-closed by the client" | "half-closed by the peer">([
    ["opening", ACTS, PEER_ACTS],
    ["dial-failed", ACTS, []],
    ["open", ACTS, PEER_ACTS],
    ["half-closed by the client", ["close", "reset"], PEER_ACTS],
    ["half-closed by the peer", ACTS, ["close", "lost"]],
  ]);

  test.each(CELLS)("%s: %s %s -> both ends freed within 1 s", async (start, side, what) => {
    const early = start === "opening" || start === "dial-failed";
    const c = await client(listener.port);
    await until(() => pipes.at(-1)?.raw.got(hostChannel()?.id ?? -1, "open") === true, "the Open");
    const { raw, sock } = pipes.at(-1)!;
    const id = hostChannel()!.id;
    if (early) expect(hostChannel()!.state).toBe("opening");
    else {
      raw.window(id);
      c.socket.write("hello");
      await until(() => raw.got(id, "data"), "the data");
      if (start === "half-closed by the client") {
        raw.autoReply = false;
        c.socket.shutdown();
        await until(() => raw.got(id, "shutdown"), "the peer got the Shutdown");
      } else if (start === "half-closed by the peer") {
        c.hold = true;
        raw.shutdown(id);
        await until(() => c.gotFin, "the client got the FIN");
      }
      await until(() => hostChannel()?.state === (start === "open" ? "open" : "half-closed"), "the host's state");
    }
    if (side === "peer") peerAct(raw, sock, id, what as PeerAct);
    else {
      act(c.socket, what as Act);
      const seen = () => {
        const ch = hostChannel();
        return !ch || ch.facts.localEnded || ch.closed;
      };
      if (early) await until(seen, "the host saw it");
    }
    // the raw forwarder's dial ends: its Window, or a Close when it failed
    if (early && what !== "lost" && !raw.sentClose.has(id)) {
      if (start === "dial-failed") raw.close(id);
      else raw.window(id);
    }
    raw.release(id);
    c.release();
    await freedWithin1s(
      () => `client ${c.closed ? "closed" : "open"}, host channel ${hostChannel()?.state ?? "freed"}`,
      () => c.closed && listener.connections === 0 && !hostChannel(),
    );
    // nothing but Close went before the peer's Window (vpnkit would have dropped it)
    expect(raw.early).toEqual([]);
  });
});
