/**
 * Channels the VM opens to the host: dockerd's userland proxy (edgeport docker-proxy), through the
 * forwarder's VM-local control socket, asks the host to publish a binding. The host accepts such a
 * channel only for the control destination and only these requests, one JSON object a line:
 *
 *   -> {"op":"publish","proto":"tcp","hostIp":"0.0.0.0","hostPort":8080,"containerIp":"172.17.0.2","containerPort":80}
 *   <- {"ok":true,"id":"3f2a...","ports":["127.0.0.1:8080","[::1]:8080"]}   or   {"ok":false,"error":"..."}
 *   -> {"op":"unpublish"}   (or simply closing the channel)
 *
 * Whatever a channel published is released when the channel ends, so a proxy that dies (or a pipe
 * that breaks) never leaves a port behind; the proxy publishes again when it reconnects.
 */
import type { ConsolaInstance } from "consola";
import { z } from "zod";
import type { Channel, Endpoint } from "../relay/mux/channel.ts";
import type { Destination } from "../relay/mux/codec.ts";
import { CONTROL_DEST, OPEN_FORBIDDEN } from "../relay/mux/constants.ts";
import type { Session } from "../relay/mux/session.ts";
import { safe } from "../shared/log.ts";
import type { Daemon } from "./daemon.ts";

const MAX_LINE = 4096;

const Request = z.discriminatedUnion("op", [
  z.strictObject({
    op: z.literal("publish"),
    proto: z.enum(["tcp", "udp"]),
    hostIp: z.string().max(64),
    hostPort: z.number().int().min(1).max(65535),
    containerIp: z.string().max(64),
    containerPort: z.number().int().min(1).max(65535),
  }),
  z.strictObject({ op: z.literal("unpublish") }),
]);

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
    let buf = "";
    let ended = false;
    const reply = (o: unknown) => {
      if (!ended) ch.localData(new TextEncoder().encode(`${JSON.stringify(o)}\n`));
    };
    const releaseAll = () => {
      const d = daemon();
      for (const id of owned.splice(0))
        void d?.releaseProxy(id).catch((e: Error) => log.warn(`docker-proxy ${id}: ${e.message}`));
    };
    let chain = Promise.resolve();
    const handle = async (line: string) => {
      let req: z.infer<typeof Request>;
      try {
        req = Request.parse(JSON.parse(line));
      } catch (e) {
        reply({
          ok: false,
          error: `bad request: ${e instanceof z.ZodError ? e.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ") : (e as Error).message}`,
        });
        return;
      }
      if (req.op === "unpublish") {
        releaseAll();
        reply({ ok: true });
        return;
      }
      const d = daemon();
      if (!d) return reply({ ok: false, error: "the daemon is starting" });
      try {
        const r = await d.publishProxy(req);
        if (ended) return void d.releaseProxy(r.id);
        owned.push(r.id);
        reply({ ok: true, id: r.id, ports: r.ports.map((p) => p.host) });
      } catch (e) {
        reply({ ok: false, error: (e as Error).message });
      }
    };
    const ep: Endpoint = {
      write(data) {
        if (ended) return -1;
        buf += new TextDecoder().decode(data);
        if (buf.length > MAX_LINE && !buf.includes("\n")) {
          reply({ ok: false, error: `request longer than ${MAX_LINE} bytes` });
          buf = "";
        }
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) chain = chain.then(() => handle(line));
        }
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
