import { expect, test } from "bun:test";
import { type ChannelFacts, type ChannelState, channelState } from "../../../src/relay/mux/channel-state.ts";

const none: ChannelFacts = {
  attachedOnce: false,
  localEnded: false,
  peerWindowSeen: false,
  shutdownSent: false,
  shutdownReceived: false,
  closeSent: false,
  closeReceived: false,
};

test.each<[string, Partial<ChannelFacts>, ChannelState]>([
  ["an acceptor before its dial ends", { peerWindowSeen: true }, "dialling"],
  ["an acceptor that got a Shutdown while dialling", { peerWindowSeen: true, shutdownReceived: true }, "dialling"],
  ["an acceptor whose dial failed, before the peer's Close", { peerWindowSeen: true, closeSent: true }, "dial-failed"],
  ["an opener before the peer's Window", { attachedOnce: true }, "opening"],
  ["an opener whose client sent FIN before the peer's Window", { attachedOnce: true, localEnded: true }, "opening"],
  ["both ways flowing", { attachedOnce: true, peerWindowSeen: true }, "open"],
  ["Shutdown sent", { attachedOnce: true, peerWindowSeen: true, shutdownSent: true }, "half-closed"],
  ["Shutdown received", { attachedOnce: true, peerWindowSeen: true, shutdownReceived: true }, "half-closed"],
  ["Close sent only", { attachedOnce: true, peerWindowSeen: true, closeSent: true }, "closing"],
  ["Close received only (an opener refused)", { attachedOnce: true, closeReceived: true }, "closing"],
  ["Close both ways", { attachedOnce: true, peerWindowSeen: true, closeSent: true, closeReceived: true }, "closed"],
  ["Close both ways while dialling", { closeSent: true, closeReceived: true }, "closed"],
])("%s -> %s", (_what, facts, state) => {
  expect(channelState({ ...none, ...facts })).toBe(state);
});
