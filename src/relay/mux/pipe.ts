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
