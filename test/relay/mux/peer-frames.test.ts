/** Routing a ready session's peer frames: each command to its channel or back to the session. */
import { expect, test } from "bun:test";
import type { Channel } from "../../../src/relay/mux/channel.ts";
import type { Frame } from "../../../src/relay/mux/codec.ts";
import { OPEN_OK, OPEN_REFUSED } from "../../../src/relay/mux/constants.ts";
import { type PeerFrameTarget, routePeerFrame } from "../../../src/relay/mux/peer-frames.ts";

function bed() {
  const calls: string[] = [];
  const ch = {
    peerData: (payload: Uint8Array) => void calls.push(`data ${payload.length}`),
    peerWindow: (seq: number) => void calls.push(`window ${seq}`),
    peerShutdown: () => void calls.push("shutdown"),
    peerClose: () => void calls.push("close"),
    abort: (why: string) => void calls.push(`abort ${why}`),
  } as unknown as Channel;
  const target: PeerFrameTarget = {
    channel: (id) => (id === 7 ? ch : undefined),
    open: (id, dest, connType) => void calls.push(`open ${id} ${dest.proto} ${connType}`),
    pong: (nonce) => void calls.push(`pong ${nonce}`),
    protocolError: (message) => void calls.push(`protocol ${message}`),
    unknown: (code) => void calls.push(`unknown ${code}`),
  };
  return { calls, route: (f: Frame) => routePeerFrame(f, target) };
}

const dest = { proto: "tcp" as const, ip: new Uint8Array([127, 0, 0, 1]), port: 80 };

test.each<[string, Frame, string[]]>([
  ["data", { cmd: "data", id: 7, payload: new Uint8Array(3) }, ["data 3"]],
  ["window", { cmd: "window", id: 7, seq: 99 }, ["window 99"]],
  ["shutdown", { cmd: "shutdown", id: 7 }, ["shutdown"]],
  ["close", { cmd: "close", id: 7 }, ["close"]],
  ["open", { cmd: "open", id: 9, connType: 2, dest }, ["open 9 tcp 2"]],
  ["open-result ok", { cmd: "open-result", id: 7, status: OPEN_OK, reason: "" }, []],
  [
    "open-result refused",
    { cmd: "open-result", id: 7, status: OPEN_REFUSED, reason: "connect 127.0.0.1:80: ECONNREFUSED" },
    ["abort refused: connect 127.0.0.1:80: ECONNREFUSED"],
  ],
  ["open-result unknown status", { cmd: "open-result", id: 7, status: 42, reason: "x" }, ["abort status 42: x"]],
  ["ping", { cmd: "ping", id: 0, nonce: 5 }, ["pong 5"]],
  ["pong", { cmd: "pong", id: 0, nonce: 5 }, []],
  ["auth", { cmd: "auth", id: 0, mac: new Uint8Array(32) }, ["protocol unexpected auth frame"]],
  ["unknown", { cmd: "unknown", id: 0, code: 0x99 }, ["unknown 153"]],
])("%s", (_name, frame, want) => {
  const { calls, route } = bed();
  route(frame);
  expect(calls).toEqual(want);
});

test.each<Frame>([
  { cmd: "data", id: 8, payload: new Uint8Array(3) },
  { cmd: "window", id: 8, seq: 1 },
  { cmd: "shutdown", id: 8 },
  { cmd: "close", id: 8 },
  { cmd: "open-result", id: 8, status: OPEN_REFUSED, reason: "late" },
])("a late $cmd for a freed id is tolerated", (frame) => {
  const { calls, route } = bed();
  route(frame);
  expect(calls).toEqual([]);
});
