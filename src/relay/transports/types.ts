/** What every transport hands back: a connected pipe goes to OnPipe; a listener can be closed. */
import type { Pipe, PipeHandlers } from "../mux/pipe.ts";

/** Called once per connected pipe; returns the handlers that receive its events. */
export type OnPipe = (pipe: Pipe) => PipeHandlers;

export interface PipeListener {
  /** the address actually bound (tcp port 0 becomes the real port) */
  readonly address: string;
  close(): void;
}

/**
 * Called on every chunk a pipe receives: --spin's hook (src/shared/spin.ts), injected by whoever
 * opens the pipe; a no-op when spinning is off.
 */
export type OnActivity = () => void;
