/** Ad-hoc publishing: open a listener per mapping; a failed one never stops the others. */
import type { ConsolaInstance } from "consola";
import type { RelayClient } from "../relay/host/relay-client.ts";
import { asEdgeportError, type EdgeportError } from "../shared/errors.ts";
import type { PortMapping } from "../shared/port-spec.ts";
import { processFdGuard } from "./fd-guard.ts";
import { openTcpListener, type TcpListener } from "./tcp-listener.ts";
import { openUdpListener, type UdpListener, type UdpOptions } from "./udp-listener.ts";
import { openUnixListener, type UnixListener } from "./unix-listener.ts";

export interface Published {
  listeners: (TcpListener | UdpListener | UnixListener)[];
  failures: { mapping: PortMapping; error: EdgeportError }[];
  close(graceMs?: number): Promise<void>;
}

export async function publishMappings(
  mappings: PortMapping[],
  relay: RelayClient,
  o: { log: ConsolaInstance; pipeWaitMs: number; udp?: Partial<UdpOptions> },
): Promise<Published> {
  const listeners: Published["listeners"] = [];
  const failures: Published["failures"] = [];
  const fail = (m: PortMapping, e: unknown) => {
    const error = asEdgeportError(e);
    o.log.error(error.message);
    failures.push({ mapping: m, error });
  };
  // UDP sockets and socket forwards bind asynchronously
  const pending: Promise<void>[] = [];
  for (const m of mappings) {
    try {
      if (m.proto === "udp" || m.proto === "unix") {
        const l =
          m.proto === "udp"
            ? openUdpListener(m, relay, { log: o.log, pipeWaitMs: o.pipeWaitMs, ...o.udp })
            : openUnixListener(m, relay, { log: o.log, pipeWaitMs: o.pipeWaitMs });
        pending.push(
          l.ready.then(
            () => void listeners.push(l),
            (e) => fail(m, e),
          ),
        );
      } else {
        listeners.push(openTcpListener(m, relay, { ...o, guard: processFdGuard(o.log) }));
      }
    } catch (e) {
      fail(m, e);
    }
  }
  await Promise.all(pending);
  return {
    listeners,
    failures,
    async close(graceMs) {
      await Promise.all(listeners.map((l) => l.close(graceMs)));
    },
  };
}
