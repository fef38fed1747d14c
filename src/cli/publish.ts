import { defineCommand } from "citty";
import { applyLogArgs, logArgs, pipeArgs, pipeSettings, udpArgs, udpSettings, untilAborted, VERSION } from "./common.ts";
import { stop } from "./context.ts";
import { log } from "../shared/log.ts";
import { EdgeportError } from "../shared/errors.ts";
import { parseDuration } from "../shared/duration.ts";
import { parsePortSpec, type PortMapping } from "../shared/port-spec.ts";
import { parseTransportUrl } from "../relay/transport-url.ts";
import { createRelayClient } from "../publisher/relay-client.ts";
import { publishMappings } from "../publisher/publish.ts";

const args = {
  spec: {
    type: "positional",
    description: "[HOST_IP:]HOST_PORT[-END]:TARGET_IP:TARGET_PORT[-END][/tcp|/udp]; IPv6 in brackets; no HOST_IP = 127.0.0.1 and ::1",
    required: true,
    valueHint: "SPEC...",
  },
  relay: { type: "string", description: "The pipe to the VM forwarder: unix:///path, tcp://IP:PORT, exec:COMMAND ARGS, npipe:////./pipe/NAME", required: true, valueHint: "URL" },
  "pipe-wait": { type: "string", description: "How long a new connection waits for a down pipe before it is reset", default: "5s", valueHint: "DURATION" },
  ...udpArgs,
  ...pipeArgs,
  ...logArgs,
} as const;

export default defineCommand({
  meta: { name: "publish", description: "Publish ports by hand, in the foreground until Ctrl-C: host listeners relayed to targets in the VM" },
  args,
  async run({ args: a, rawArgs }) {
    applyLogArgs(a);
    const plog = log.withTag("publish");
    const specs = (a._ as string[]).filter((s) => s !== "--");
    const mappings: PortMapping[] = specs.flatMap((s) => parsePortSpec(s));
    const url = parseTransportUrl(a.relay, "connect");
    const settings = pipeSettings(a);
    const pipeWaitMs = parseDuration(a["pipe-wait"], "--pipe-wait");
    const udp = udpSettings(a);
    const relay = createRelayClient({ url, ...settings, log: log.withTag("pipe"), version: VERSION });
    const published = await publishMappings(mappings, relay, { log: plog, pipeWaitMs, udp });
    if (published.listeners.length === 0) {
      relay.close();
      throw new EdgeportError("E_DIAL", `nothing was published (${published.failures.length} of ${mappings.length} listeners failed)`);
    }
    if (published.failures.length) plog.warn(`${published.failures.length} of ${mappings.length} listeners failed; the others are published`);
    await untilAborted(stop.signal);
    plog.info("stopping: closing listeners and connections");
    await published.close(1000);
    relay.close();
  },
});
