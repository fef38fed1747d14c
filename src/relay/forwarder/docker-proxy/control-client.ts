/**
 * The docker-proxy's side of a control channel: connects to the forwarder's VM-local control
 * socket (which relays it to the host daemon over the pipe), sends one publish request and reads
 * the reply line (src/relay/control/protocol.ts). The connection then stays open: it is the lease
 * on the published port, and the host releases the port when it ends.
 */
import {
  type ControlReply,
  createLineSplitter,
  decodeReply,
  encodeLine,
  type PublishRequest,
} from "../../control/protocol.ts";

/** how long the host may take to answer a request */
export const REPLY_TIMEOUT_MS = 15_000;

export interface ControlLease {
  reply: ControlReply;
  /** ends the channel: the host releases what it published */
  end(): void;
  /** resolves when the connection is closed, from either side */
  closed: Promise<void>;
}

/**
 * Sends `req` on a new connection to the unix socket at `path`; resolves with the host's reply, or
 * rejects when the socket cannot be reached (the error keeps its errno code), the host answers
 * something else, closes the channel first, or does not answer within `timeoutMs`.
 */
export async function requestPublish(
  path: string,
  req: Omit<PublishRequest, "op">,
  timeoutMs = REPLY_TIMEOUT_MS,
): Promise<ControlLease> {
  const lines = createLineSplitter();
  const { promise: replied, resolve: onReply, reject: onFail } = Promise.withResolvers<ControlReply>();
  const { promise: closed, resolve: onClosed } = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    unix: path,
    allowHalfOpen: true,
    socket: {
      data(_s, d) {
        const [line] = lines.push(d).lines;
        if (line === undefined) return;
        try {
          onReply(decodeReply(line));
        } catch (e) {
          onFail(e);
        }
      },
      end(s) {
        onFail(new Error("the host closed the control channel"));
        s.end();
      },
      close() {
        onFail(new Error("the control channel closed"));
        onClosed();
      },
      error() {},
    },
  });
  const { proto, hostIp, hostPort, containerIp, containerPort } = req;
  socket.write(encodeLine({ op: "publish", proto, hostIp, hostPort, containerIp, containerPort }));
  const timeout = setTimeout(
    () => onFail(new Error(`no answer from the host within ${timeoutMs / 1000} s`)),
    timeoutMs,
  );
  try {
    return { reply: await replied, end: () => socket.end(), closed };
  } catch (e) {
    socket.end();
    throw e;
  } finally {
    clearTimeout(timeout);
  }
}
