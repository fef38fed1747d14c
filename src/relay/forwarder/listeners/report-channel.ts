/**
 * The forwarder's side of the listeners extension: on a session that negotiated it, one channel to
 * LISTENERS_DEST carries the whole picture first, then each change; the host's allow lines come
 * back on it and feed the allowance. The channel ends with its session; a new session gets a new
 * picture.
 */
import type { ConsolaInstance } from "consola";
import { decodeAllow, encodeReport, MAX_LISTENER_LINE } from "../../control/listeners.ts";
import { createLineSplitter } from "../../control/protocol.ts";
import type { Channel } from "../../mux/channel.ts";
import { EXT_LISTENERS, LISTENERS_DEST } from "../../mux/constants.ts";
import type { Endpoint } from "../../mux/endpoint.ts";
import type { Session } from "../../mux/session.ts";
import type { ListenerAllowance } from "./allowance.ts";
import type { ListenerWatcher } from "./watcher.ts";

export interface ListenerReporting {
  watcher: ListenerWatcher;
  allowance: ListenerAllowance;
}

/** Opens the report channel on a ready session, when the host speaks the extension (else null: nothing is sent). */
export function reportListeners(session: Session, r: ListenerReporting, log: ConsolaInstance): Channel | null {
  if (!session.negotiated?.ext.has(EXT_LISTENERS)) {
    log.info("--report-listeners: the host does not speak the listeners extension; nothing is reported to it");
    return null;
  }
  const token = {};
  const lines = createLineSplitter(MAX_LISTENER_LINE);
  const encoder = new TextEncoder();
  let unsubscribe = () => {};
  const end = () => {
    unsubscribe();
    r.allowance.drop(token);
  };
  const ep: Endpoint = {
    write(data) {
      const { lines: got, overflow } = lines.push(data);
      if (overflow) log.warn(`the host sent a listeners line longer than ${MAX_LISTENER_LINE} bytes; dropped`);
      for (const line of got) {
        try {
          r.allowance.setAllowed(token, decodeAllow(line).targets);
        } catch (e) {
          log.warn(`listeners channel: ${(e as Error).message}`);
        }
      }
      return data.length;
    },
    shutdown() {
      end();
      ch.localEnd();
    },
    close: end,
    reset: end,
    pause() {},
    resume() {},
  };
  const ch = session.open({ proto: "unix", path: LISTENERS_DEST }, ep);
  const send = (text: string[]) => {
    for (const t of text) ch.localData(encoder.encode(t));
  };
  send(encodeReport(true, r.watcher.current(), []));
  unsubscribe = r.watcher.subscribe((c) => send(encodeReport(false, c.add, c.remove)));
  log.debug(`listeners reported to the host on channel ${ch.id}`);
  return ch;
}

/** Keeps the allowance's picture of what listens in step with the watcher. */
export function followListening(r: ListenerReporting): () => void {
  r.allowance.setListening(r.watcher.current());
  return r.watcher.subscribe(() => r.allowance.setListening(r.watcher.current()));
}
