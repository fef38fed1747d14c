/**
 * One trial session over the relay URL, the way `edgeport run` dials it, closed as soon as it is
 * ready or has failed. The only doctor module that builds a Session: when the session's options
 * change, this is the one place to follow.
 */
import { formatCloseReason } from "../../relay/mux/close-reason.ts";
import { Session } from "../../relay/mux/session.ts";
import { dialPipe } from "../../relay/transports/index.ts";
import { formatTransportUrl, type TransportUrl } from "../../relay/transports/url.ts";
import type { PipeProbe } from "./pipe.ts";

export function probePipe(
  url: TransportUrl,
  o: { secret?: Uint8Array; timeoutMs: number; version: string },
): Promise<PipeProbe> {
  const text = formatTransportUrl(url);
  return new Promise((resolve) => {
    let session: Session | null = null;
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const s = session;
      const hello = s?.peer;
      resolve({
        url: text,
        reached: s !== null,
        handshake: !!s?.negotiated,
        ready: !error,
        secret: !!o.secret,
        ...(error ? { error } : {}),
        ...(s?.negotiated
          ? {
              peer: {
                edgeport: s.negotiated.edgeportPeer,
                version: hello?.version,
                ext: [...s.negotiated.ext],
                window: hello?.window,
              },
            }
          : {}),
      });
      s?.close("edgeport doctor: done");
    };
    const timer = setTimeout(
      () => finish(session ? `no answer within ${o.timeoutMs} ms` : `no connection within ${o.timeoutMs} ms`),
      o.timeoutMs,
    );
    dialPipe(url, (pipe) => {
      if (done) {
        // connected after the deadline: nobody waits for this session
        pipe.close();
        return { data() {}, drain() {}, closed() {} };
      }
      const s = new Session({
        role: "host",
        pipe: { secret: o.secret, keepaliveMs: 0, deadAfterMs: o.timeoutMs },
        version: o.version,
        onReady: () => finish(),
        onClosed: (_s, why) =>
          finish(
            why.kind !== "peer-closed"
              ? formatCloseReason(why)
              : // the peer hangs up on a wrong proof, often before its own proof leaves it
                s.negotiated && o.secret && s.peer?.auth
                ? "authentication failed: the peer closed the pipe on our proof of the secret (the pipe secrets differ)"
                : "the peer closed the pipe",
          ),
      });
      session = s;
      s.start(pipe);
      return s.handlers;
    }).catch((e: Error) => finish(e.message));
  });
}
