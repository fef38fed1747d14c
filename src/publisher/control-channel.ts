/**
 * Channels the VM opens to the host: dockerd's userland proxy (edgeport docker-proxy), through the
 * forwarder's VM-local control socket, asks the host to publish a binding. The host accepts such a
 * channel only for the control destination and only the requests of the control-line protocol
 * (src/relay/control/protocol.ts), one JSON object a line.
 *
 * Whatever a channel published is released when the channel ends, so a proxy that dies (or a pipe
 * that breaks) never leaves a port behind; the proxy publishes again when it reconnects.
 */
import type { ConsolaInstance } from "consola";
import {
  type ControlReply,
  type ControlRequest,
  createLineSplitter,
  decodeRequest,
  encodeLine,
  MAX_LINE,
} from "../relay/control/protocol.ts";
import type { Channel, Endpoint } from "../relay/mux/channel.ts";
import type { Destination } from "../relay/mux/codec.ts";
import { CONTROL_DEST, OPEN_FORBIDDEN } from "../relay/mux/constants.ts";
import type { Session } from "../relay/mux/session.ts";
import { safe } from "../shared/log.ts";
import type { Daemon } from "./daemon.ts";

export function controlChannels(
  daemon: () => Pick<Daemon, "publishProxy" | "releaseProxy"> | null,
  log: ConsolaInstance,
) {
  return (s: Session, ch: Channel, dest: Destination): void => {
    if (dest.proto !== "unix" || dest.path !== CONTROL_DEST) {
      const what = dest.proto === "unix" ? `unix:${safe(dest.path)}` : `${dest.proto} channel`;
      log.warn(`refused a ${what} the VM opened: the host accepts only control channels`);
      s.reject(ch, OPEN_FORBIDDEN, "the host accepts only control channels from the VM");
      return;
    }
    const owned: string[] = [];
    const lines = createLineSplitter(MAX_LINE);
    let ended = false;
    const reply = (o: ControlReply) => {
      if (!ended) ch.localData(new TextEncoder().encode(encodeLine(o)));
    };
    const releaseAll = () => {
      const running = daemon();
      for (const id of owned.splice(0))
        void running?.releaseProxy(id).catch((e: Error) => log.warn(`docker-proxy ${id}: ${e.message}`));
    };
    let chain = Promise.resolve();
    const handle = async (line: string) => {
      let req: ControlRequest;
      try {
        req = decodeRequest(line);
      } catch (e) {
        reply({ ok: false, error: (e as Error).message });
        return;
      }
      if (req.op === "unpublish") {
        releaseAll();
        reply({ ok: true });
        return;
      }
      const running = daemon();
      if (!running) return reply({ ok: false, error: "the daemon is starting" });
      try {
        const lease = await running.publishProxy(req);
        if (ended) return void running.releaseProxy(lease.id);
        owned.push(lease.id);
        reply({ ok: true, id: lease.id, ports: lease.ports.map((p) => p.host) });
      } catch (e) {
        reply({ ok: false, error: (e as Error).message });
      }
    };
    const ep: Endpoint = {
      write(data) {
        if (ended) return -1;
        const { lines: got, overflow } = lines.push(data);
        if (overflow) reply({ ok: false, error: `request longer than ${MAX_LINE} bytes` });
        for (const line of got.map((l) => l.trim()).filter(Boolean)) chain = chain.then(() => handle(line));
        return data.length;
      },
      shutdown() {
        // the proxy closed its side: it is going away
        ended = true;
        void chain.then(releaseAll);
        ch.localEnd();
      },
      close() {
        ended = true;
        void chain.then(releaseAll);
      },
      reset() {
        ended = true;
        void chain.then(releaseAll);
      },
      pause() {},
      resume() {},
    };
    s.accept(ch, ep);
  };
}
