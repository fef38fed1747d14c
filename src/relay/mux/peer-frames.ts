/**
 * Routes each frame the peer sends once the session is ready: channel frames to their channel,
 * Opens and pings back to the session. Frames for ids already freed are late frames: tolerated.
 */
import { safe } from "../../shared/log.ts";
import type { Channel } from "./channel.ts";
import type { Destination, Frame } from "./codec.ts";
import { OPEN_OK, OPEN_STATUS_NAMES } from "./constants.ts";

/** What the routing needs from its session (one object per session, not per frame). */
export interface PeerFrameTarget {
  channel(id: number): Channel | undefined;
  open(id: number, dest: Destination, connType: number): void;
  /** answer a ping with a pong of its nonce */
  pong(nonce: number): void;
  protocolError(message: string): void;
  unknown(code: number): void;
}

export function routePeerFrame(f: Frame, to: PeerFrameTarget): void {
  const ch = to.channel(f.id);
  switch (f.cmd) {
    case "data":
      if (ch) ch.peerData(f.payload);
      return;
    case "window":
      if (ch) ch.peerWindow(f.seq);
      return;
    case "shutdown":
      if (ch) ch.peerShutdown();
      return;
    case "close":
      if (ch) ch.peerClose();
      return;
    case "open":
      return to.open(f.id, f.dest, f.connType);
    case "open-result":
      if (ch && f.status !== OPEN_OK)
        ch.abort(`${OPEN_STATUS_NAMES[f.status] ?? `status ${f.status}`}: ${safe(f.reason)}`);
      return;
    case "ping":
      return to.pong(f.nonce);
    case "pong":
      return;
    case "auth":
      return to.protocolError("unexpected auth frame");
    case "unknown":
      return to.unknown(f.code);
  }
}
