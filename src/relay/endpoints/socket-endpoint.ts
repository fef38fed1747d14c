/** Glue between Bun TCP/Unix sockets and channels: the socket is the channel's endpoint. */
import type { Socket, SocketHandler } from "bun";
import { poke } from "../../shared/spin.ts";
import type { Channel, Endpoint } from "../mux/channel.ts";

/** Per-socket state; `ch` is set once the channel exists. */
export interface RelayConn {
  ch: Channel | null;
}

export function socketEndpoint(socket: Socket<RelayConn>): Endpoint {
  return {
    write: (d) => socket.write(d),
    shutdown: () => socket.shutdown(),
    close: () => socket.end(),
    reset: () => socket.terminate(),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  };
}

const errorText = (e: unknown): string | undefined => {
  if (!e) return undefined;
  const err = e as { code?: string; message?: string };
  return err.code ?? err.message ?? String(e);
};

/** Socket callbacks that feed a channel. `allowHalfOpen: true` must be set where they are used. */
export const relaySocketHandlers: SocketHandler<RelayConn> = {
  data(s, chunk) {
    poke();
    s.data.ch?.localData(chunk);
  },
  drain(s) {
    s.data.ch?.localDrain();
  },
  end(s) {
    s.data.ch?.localEnd();
  },
  close(s, err) {
    s.data.ch?.localClosed(errorText(err));
  },
  error() {
    // the close callback follows with the error
  },
};
