/**
 * A channel's life as a state machine whose states and events can be listed (pure: the channel
 * keeps the facts, this module names the state they make). Tests walk every event in every state.
 *
 *   opening      the opener sent Open (and its Window); the peer's first Window has not come.
 *                Nothing but Close may be sent yet: a local FIN (or a clean close) waits for it.
 *   dialling     the acceptor received Open and dials; no endpoint yet. A Shutdown from the peer
 *                is kept and applied to the endpoint once the dial succeeds; a Close ends it.
 *   dial-failed  the dial failed (or was refused): Close sent, the peer's Close awaited.
 *   open         both ways flow.
 *   half-closed  one way has ended (Shutdown sent or received); the other still flows.
 *   closing      Close sent or received, not both: the id is still reserved.
 *   closed       Close sent and received: the id is free, both sockets are released.
 *
 * Events: from the local socket (data, FIN, clean close, reset), from the peer (Window, Data,
 * Shutdown, Close, open refused), and from the session (dial done, pipe lost).
 */

export const CHANNEL_STATES = [
  "opening",
  "dialling",
  "dial-failed",
  "open",
  "half-closed",
  "closing",
  "closed",
] as const;
export type ChannelState = (typeof CHANNEL_STATES)[number];

export const CHANNEL_EVENTS = [
  "local-data",
  "local-fin",
  "local-close",
  "local-reset",
  "peer-window",
  "peer-data",
  "peer-shutdown",
  "peer-close",
  "open-refused",
  "dial-done",
  "pipe-lost",
] as const;
export type ChannelEvent = (typeof CHANNEL_EVENTS)[number];

/** The facts a channel keeps, from which its state follows. */
export interface ChannelFacts {
  /** an endpoint was attached (the opener at once; the acceptor when its dial succeeded) */
  readonly attachedOnce: boolean;
  /** the local socket sent its FIN or closed (its Shutdown may still wait for the peer's Window) */
  readonly localEnded: boolean;
  readonly peerWindowSeen: boolean;
  readonly shutdownSent: boolean;
  readonly shutdownReceived: boolean;
  readonly closeSent: boolean;
  readonly closeReceived: boolean;
}

export function channelState(f: ChannelFacts): ChannelState {
  if (f.closeSent && f.closeReceived) return "closed";
  if (!f.attachedOnce) return f.closeSent && !f.closeReceived ? "dial-failed" : "dialling";
  if (f.closeSent || f.closeReceived) return "closing";
  if (!f.peerWindowSeen) return "opening";
  if (f.shutdownSent || f.shutdownReceived) return "half-closed";
  return "open";
}
