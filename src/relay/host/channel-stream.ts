/**
 * A channel of the pipe as a byte stream for pipe-http-client's streamRequest: how the host
 * reaches the engine API inside the VM (`--engine vm:///var/run/docker.sock`), one channel a
 * request, its Open naming the unix path. The channel is the stream's endpoint: what the VM sends
 * is handed to the exchange, and while the exchange's reader lags the channel keeps it (its window
 * then stops the VM). A lost pipe, or an Open the forwarder refuses, is the stream's error.
 */
import { EdgeportError } from "../../shared/errors.ts";
import type { ByteStream, ByteStreamEvents, StreamOpener } from "../../shared/pipe-http-client.ts";
import type { Channel, Endpoint } from "../mux/channel.ts";
import { formatCloseReason } from "../mux/close-reason.ts";
import type { Destination } from "../mux/codec.ts";
import type { Session } from "../mux/session.ts";
import type { RelayClient } from "./relay-client.ts";

const describeDest = (d: Destination) => (d.proto === "unix" ? `unix://${d.path}` : `${d.proto} destination`);

/** Why a channel ended under the stream: the pipe went down, or the VM's end refused or closed it. */
function channelError(relay: RelayClient, s: Session, ch: Channel | null, dest: Destination): Error {
  if (s.state === "closed")
    return new EdgeportError(
      "E_PIPE_DOWN",
      `the pipe to ${relay.description} is down (${s.ended ? formatCloseReason(s.ended) : "closed"})`,
    );
  return new EdgeportError("E_DIAL", `${describeDest(dest)} in the VM: ${ch?.failure ?? "the channel was reset"}`);
}

/** The channel on a ready session, its endpoint feeding the exchange. */
function attach(relay: RelayClient, s: Session, dest: Destination, events: ByteStreamEvents): ByteStream {
  let ch: Channel | null = null;
  /** the exchange's reader lags: the channel holds what arrives until resume */
  let paused = false;
  let done = false;
  const ep: Endpoint = {
    write(d) {
      if (paused) return 0;
      events.data(d);
      return d.length;
    },
    shutdown: () => events.end(),
    close: () => events.end(),
    reset: () => events.error(channelError(relay, s, ch, dest)),
    // the local side writes one request: nothing to hold back
    pause() {},
    resume() {},
  };
  try {
    ch = s.open(dest, ep);
  } catch {
    // the session closed between being handed out and this Open
    throw channelError(relay, s, null, dest);
  }
  const opened = ch;
  return {
    write: (d) => {
      if (done || opened.closed) return -1;
      opened.localData(d);
      return d.length;
    },
    terminate() {
      if (done) return;
      done = true;
      // later, not inside the channel's own call into the endpoint; a clean close: Shutdown, then Close
      queueMicrotask(() => opened.localClosed());
    },
    pause() {
      paused = true;
    },
    resume() {
      if (!paused) return;
      paused = false;
      opened.localDrain();
    },
  };
}

/**
 * Opens streams to dest in the VM: each waits up to waitMs for the pipe (its error then says the
 * pipe is down, and why), or less when the signal aborts.
 */
export function channelStreams(relay: RelayClient, dest: Destination, waitMs: number): StreamOpener {
  return async (events, signal) => {
    const ready = relay.session(waitMs);
    const s = signal
      ? await Promise.race([
          ready,
          new Promise<never>((_, reject) => {
            if (signal.aborted) reject(signal.reason);
            signal.addEventListener("abort", () => reject(signal.reason), { once: true });
          }),
        ])
      : await ready;
    if (s.state !== "ready") throw channelError(relay, s, null, dest);
    return attach(relay, s, dest, events);
  };
}
