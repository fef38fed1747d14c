/** Ad-hoc publishing: open a listener per mapping; a failed one never stops the others. */
import type { ConsolaInstance } from "consola";
import { asEdgeportError, EdgeportError } from "../shared/errors.ts";
import { formatMapping, type PortMapping } from "../shared/port-spec.ts";
import type { RelayClient } from "./relay-client.ts";
import { openTcpListener, type TcpListener } from "./tcp-listener.ts";

export interface Published {
  listeners: TcpListener[];
  failures: { mapping: PortMapping; error: EdgeportError }[];
  close(graceMs?: number): Promise<void>;
}

export function publishMappings(
  mappings: PortMapping[],
  relay: RelayClient,
  o: { log: ConsolaInstance; pipeWaitMs: number },
): Published {
  const listeners: TcpListener[] = [];
  const failures: Published["failures"] = [];
  for (const m of mappings) {
    try {
      if (m.proto !== "tcp") throw new EdgeportError("E_UNSUPPORTED", `${formatMapping(m)}: UDP publishing is not supported yet`);
      listeners.push(openTcpListener(m, relay, o));
    } catch (e) {
      const error = asEdgeportError(e);
      o.log.error(error.message);
      failures.push({ mapping: m, error });
    }
  }
  return {
    listeners,
    failures,
    async close(graceMs) {
      await Promise.all(listeners.map((l) => l.close(graceMs)));
    },
  };
}
