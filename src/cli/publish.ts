import { defineCommand } from "citty";
import { publishMappings } from "../publisher/publish.ts";
import { createRelayClient } from "../relay/host/relay-client.ts";
import { parseTransportUrl } from "../relay/transports/url.ts";
import { parseDuration } from "../shared/duration.ts";
import { EdgeportError } from "../shared/errors.ts";
import { raiseFdLimit } from "../shared/fd-limit.ts";
import { log } from "../shared/log.ts";
import { type PortMapping, parsePortSpec } from "../shared/port-spec.ts";
import { apiArgs, apiClient } from "./client.ts";
import {
  applyLogArgs,
  logArgs,
  pipeArgs,
  pipeSettings,
  startSpin,
  udpArgs,
  udpSettings,
  untilAborted,
  VERSION,
} from "./common.ts";
import { contextOf, stop } from "./context.ts";
import { PublishReply } from "./replies.ts";

const args = {
  spec: {
    type: "positional",
    description:
      "[HOST_IP:]HOST_PORT[-END]:TARGET[:TARGET_PORT[-END]][/tcp|/udp]; TARGET is an IP, or (through a daemon) a container name or id; IPv6 in brackets; no HOST_IP = 127.0.0.1 and ::1",
    required: true,
    valueHint: "SPEC...",
  },
  "proxy-protocol": {
    type: "boolean",
    description:
      "Start each TCP connection with a PROXY protocol v2 header carrying the client's address, for servers that read it (nginx proxy_protocol, HAProxy accept-proxy); TCP specs only",
    default: false,
  },
  relay: {
    type: "string",
    description:
      "Standalone, in the foreground: the pipe to the VM forwarder (unix:///path, tcp://IP:PORT, vsock://CID:PORT, exec:COMMAND ARGS, npipe:////./pipe/NAME). Without it the specs go to the running daemon (edgeport run)",
    valueHint: "URL",
  },
  ...apiArgs,
  "pipe-wait": {
    type: "string",
    description: "How long a new connection waits for a down pipe before it is reset",
    default: "5s",
    valueHint: "DURATION",
  },
  ...udpArgs,
  ...pipeArgs,
  ...logArgs,
} as const;

/** With --proxy-protocol every mapping of the spec must be TCP; they are marked for the header. */
function proxyCheck<M extends PortMapping>(spec: string, ms: M[], proxy: boolean): M[] {
  if (!proxy) return ms;
  if (ms.some((m) => m.proto !== "tcp"))
    throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": --proxy-protocol is for TCP only`);
  return ms.map((m) => ({ ...m, proxyProtocol: true }));
}

export default defineCommand({
  meta: {
    name: "publish",
    description:
      "Publish ports by hand: through the running daemon (kept until edgeport unpublish), or standalone with --relay in the foreground until Ctrl-C",
  },
  args,
  async run({ args: a, data }) {
    applyLogArgs(a);
    const ctx = contextOf(data);
    raiseFdLimit(); // soft RLIMIT_NOFILE up to the hard limit, as Go does: one fd per client connection
    const plog = log.withTag("publish");
    const specs = (a._ as string[]).filter((s) => s !== "--");
    if (!a.relay) {
      const client = apiClient(a, ctx);
      for (const spec of specs) proxyCheck(spec, parsePortSpec(spec, { targetNames: true }), a["proxy-protocol"]); // bad input fails before anything is sent
      for (const spec of specs) {
        const body = { spec, ...(a["proxy-protocol"] ? { proxyProtocol: true } : {}) };
        const r = await client.request("POST", "/v1/ports", PublishReply, body);
        console.log(
          `${r.body.id} ${r.body.created ? "published" : "already published"}: ${r.body.ports.map((p) => `${p.host}->${p.target}/${p.proto}${p.proxyProtocol ? " +PROXY" : ""}`).join(", ")}`,
        );
      }
      return;
    }
    const mappings: PortMapping[] = specs.flatMap((s) => proxyCheck(s, parsePortSpec(s), a["proxy-protocol"]));
    const url = parseTransportUrl(a.relay, "connect");
    const settings = pipeSettings(a, ctx);
    const activity = startSpin(settings, plog);
    const pipeWaitMs = parseDuration(a["pipe-wait"], "--pipe-wait");
    const udp = udpSettings(a);
    const relay = createRelayClient({ url, pipe: settings, log: log.withTag("pipe"), version: VERSION, activity });
    const published = await publishMappings(mappings, relay, { log: plog, pipeWaitMs, udp });
    if (published.listeners.length === 0) {
      relay.close();
      throw new EdgeportError(
        "E_DIAL",
        `nothing was published (${published.failures.length} of ${mappings.length} listeners failed)`,
      );
    }
    if (published.failures.length)
      plog.warn(`${published.failures.length} of ${mappings.length} listeners failed; the others are published`);
    await untilAborted(stop.signal);
    plog.info("stopping: closing listeners and connections");
    await published.close(1000);
    relay.close();
  },
});
