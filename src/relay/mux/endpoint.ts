/** What a channel talks to: its local socket (the endpoint) and its session (the host). */
import type { Channel } from "./channel.ts";

/** The local side of a channel: a TCP socket, or a fake in tests. Same contract as a Bun socket. */
export interface Endpoint {
  /** bytes accepted (may be fewer than given, 0 when full); -1 when closed */
  write(data: Uint8Array): number;
  /** half-close: FIN */
  shutdown(): void;
  /** graceful full close */
  close(): void;
  /** abort: RST */
  reset(): void;
  pause(): void;
  resume(): void;
}

/** What a channel needs from its session. */
export interface ChannelHost {
  sendControl(frame: Uint8Array): void;
  /** the channel has data and maybe credit: consider it for the next write */
  schedule(ch: Channel): void;
  /** Close was sent and received: the id may be reused */
  release(ch: Channel): void;
  protocolError(message: string): void;
}
