import { defineCommand } from "citty";
import type { PortState } from "../publisher/daemon.ts";
import { publishMappings } from "../publisher/publish.ts";
import { checkSocketDir } from "../publisher/unix-path.ts";
import { createRelayClient } from "../relay/host/relay-client.ts";
import { parseTransportUrl } from "../relay/transports/url.ts";
import { parseDuration } from "../shared/duration.ts";
import { EdgeportError, isEdgeportError } from "../shared/errors.ts";
import { raiseFdLimit } from "../shared/fd-limit.ts";
import { log } from "../shared/log.ts";
import { type PortMapping, parsePortSpec } from "../shared/port-spec.ts";
import type { ProcessContext } from "../shared/process-context.ts";
import { apiArgs, apiClient } from "./client.ts";
import {
  applyLogArgs,
  EXIT,
  exitWith,
  logArgs,
  pipeArgs,
  pipeSettings,
  printJson,
  startSpin,
  udpArgs,
  udpSettings,
  untilAborted,
  VERSION,
} from "./common.ts";
import { contextOf, stop } from "./context.ts";
import { PublishReply, StateReply } from "./replies.ts";

const args = {
  spec: {
    type: "positional",
    description:
      "[HOST_IP:]HOST_PORT[-END]:TARGET:TARGET_PORT[-END][/tcp|/udp]; TARGET is an IP, or (through a daemon) a container name or id; IPv6 in brackets; no HOST_IP = 127.0.0.1 and ::1. Or a socket forward unix:///HOST_PATH:unix:///VM_PATH (host side npipe:////./pipe/NAME on Windows): the host socket is made owner-only in a directory of yours; the forwarder needs --allow unix:///VM_PATH",
    required: true,
    valueHint: "SPEC...",
  },
  json: {
    type: "boolean",
    description: "Through the daemon: print the result of each spec (id, ports, or error) as JSON",
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

/**
 * With --proxy-protocol every mapping of the spec must be TCP; they are marked for the header. A
 * socket forward's host directory is checked here too, so bad input fails (exit 2) before anything
 * is published.
 */
function proxyCheck<M extends PortMapping>(spec: string, ms: M[], proxy: boolean, uid: number): M[] {
  for (const m of ms) if (m.proto === "unix" && m.hostIp.startsWith("/")) checkSocketDir(m.hostIp, uid);
  if (!proxy) return ms;
  if (ms.some((m) => m.proto !== "tcp"))
    throw new EdgeportError("E_BAD_SPEC", `bad spec "${spec}": --proxy-protocol is for TCP only`);
  return ms.map((m) => ({ ...m, proxyProtocol: true }));
}

type PublishAnswer = { id: string; created: boolean; ports: PortState[]; code?: string; message?: string };
const portsText = (ports: PortState[]) =>
  ports
    .map((p) =>
      p.proto === "unix"
        ? `${p.host}->${p.target}`
        : `${p.host}->${p.target}/${p.proto}${p.proxyProtocol ? " +PROXY" : ""}`,
    )
    .join(", ");

/**
 * Every spec goes to the daemon, one request each: a failure is reported and the rest still
 * publish (exit 1 when any failed). Then, if the pipe to the VM is down, says so: the ports listen
 * but clients wait and are reset (exit 3).
 */
async function publishThroughDaemon(
  a: { json?: boolean; "proxy-protocol": boolean; api?: string; "api-token-file"?: string },
  specs: string[],
  ctx: ProcessContext,
): Promise<void> {
  const client = apiClient(a, ctx);
  for (const spec of specs) proxyCheck(spec, parsePortSpec(spec, { targetNames: true }), a["proxy-protocol"], ctx.uid); // bad input fails before anything is sent
  const results: unknown[] = [];
  let published = 0;
  for (const spec of specs) {
    const body = { spec, ...(a["proxy-protocol"] ? { proxyProtocol: true } : {}) };
    const r = await client.request("POST", "/v1/ports", PublishReply, body).catch((e: unknown) => {
      if (!isEdgeportError(e) || e.code === "E_DIAL" || e.code === "E_PROTOCOL" || e.code === "E_PERMISSION") throw e;
      console.error(`edgeport publish: ${spec}: ${e.message}`);
      results.push({ spec, error: { code: e.code, message: e.message } });
      exitWith(EXIT.failed);
      return null;
    });
    if (!r) continue;
    published++;
    const { id, created, ports } = r.body as unknown as PublishAnswer;
    results.push({ spec, id, created, ports });
    if (!a.json) console.log(`${id} ${created ? "published" : "already published"}: ${portsText(ports)}`);
  }
  if (a.json) printJson(results);
  if (published === 0) return;
  const st = await client.request("GET", "/v1/state", StateReply);
  if (!st.body.pipe.up) {
    console.error(
      `edgeport publish: the pipe to the VM (${st.body.pipe.url}) is down: the ports listen, but a client that connects waits for the pipe (the daemon's --pipe-wait, 5s by default) and is then reset. See edgeport status; is the forwarder running?`,
    );
    exitWith(EXIT.down);
  }
}

export default defineCommand({
  meta: {
    name: "publish",
    description:
      "Publish ports by hand: through the running daemon (kept until edgeport unpublish, also across the daemon's restarts: see run --state-dir), or standalone with --relay in the foreground until Ctrl-C (not kept: gone when it stops)",
  },
  args,
  async run({ args: a, data }) {
    applyLogArgs(a);
    const ctx = contextOf(data);
    raiseFdLimit(); // soft RLIMIT_NOFILE up to the hard limit, as Go does: one fd per client connection
    const plog = log.withTag("publish");
    const specs = (a._ as string[]).filter((s) => s !== "--");
    if (!a.relay) return publishThroughDaemon(a, specs, ctx);
    const mappings: PortMapping[] = specs.flatMap((s) => proxyCheck(s, parsePortSpec(s), a["proxy-protocol"], ctx.uid));
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
