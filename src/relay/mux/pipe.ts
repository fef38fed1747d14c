/** The byte pipe under a session: a socket, a process's stdio, or an in-memory pair in tests. */
export interface Pipe {
  /** bytes accepted; fewer when full (then a drain follows); -1 when closed */
  write(data: Uint8Array): number;
  close(): void;
  readonly description: string;
}

/** What a transport calls on the session. */
export interface PipeHandlers {
  data(chunk: Uint8Array): void;
  drain(): void;
  closed(error?: string): void;
}

/** How a session behaves over its pipe: the relay client and the forwarder pass it whole to each session. */
export interface PipeSettings {
  /** receive window offered to an edgeport peer at first (a vpnkit peer always gets 64 KiB) */
  window?: number;
  /** what a channel's window may grow to when the Window round trip limits its flow */
  windowMax?: number;
  /** pipe secret; when set, the peer must prove it holds the same one */
  secret?: Uint8Array;
  /** send a ping after this much silence (edgeport peers only); 0 disables */
  keepaliveMs?: number;
  /** declare the pipe dead after this much silence (also bounds the handshake) */
  deadAfterMs?: number;
  /** behave exactly like a plain vpnkit end: empty handshake payload, no extensions (interoperability) */
  plain?: boolean;
}
