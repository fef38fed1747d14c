import { homedir } from "node:os";
import { defineCommand } from "citty";
import { createEngine } from "../events/engine.ts";
import { BINDING_POLICIES, type BindingPolicy } from "../events/wanted.ts";
import { commandRunner, createFirewall, parseFirewallMode, selectBackend } from "../firewall/index.ts";
import { parseApiUrl, serveControlApi } from "../publisher/control-api.ts";
import { controlChannels } from "../publisher/control-channel.ts";
import { createDaemon } from "../publisher/daemon.ts";
import { createRelayClient } from "../relay/host/relay-client.ts";
import { parseTransportUrl } from "../relay/transports/url.ts";
import { mergeArgs, portRules } from "../shared/config.ts";
import { runConfig } from "../shared/config-file.ts";
import { parseDuration } from "../shared/duration.ts";
import { EdgeportError } from "../shared/errors.ts";
import { log } from "../shared/log.ts";
import {
  applyLogArgs,
  firewallArgs,
  logArgs,
  pipeArgs,
  pipeSettings,
  startSpin,
  udpArgs,
  udpSettings,
  untilAborted,
  VERSION,
} from "./common.ts";
import { stop } from "./context.ts";

/** DOCKER_HOST, else the platform's default engine socket. */
export function defaultEngine(env: Record<string, string | undefined>, platform: string): string {
  if (env.DOCKER_HOST) return env.DOCKER_HOST;
  return platform === "win32" ? "npipe:////./pipe/docker_engine" : "unix:///var/run/docker.sock";
}

/** --engine, else DOCKER_HOST (a bad one is blamed on DOCKER_HOST), else the default socket; null for none. */
function engineOf(flag: string | undefined, env: Record<string, string | undefined>) {
  const url = flag ?? defaultEngine(env, process.platform);
  if (url === "none") return null;
  try {
    return createEngine(url);
  } catch (e) {
    if (flag !== undefined || !env.DOCKER_HOST || !(e instanceof EdgeportError)) throw e;
    throw new EdgeportError(e.code, `DOCKER_HOST: ${e.message} (set --engine to override it)`);
  }
}

export function defaultControlPath(env: Record<string, string | undefined>, uid: number): string {
  return env.XDG_RUNTIME_DIR ? `${env.XDG_RUNTIME_DIR}/edgeport/control.sock` : `/tmp/edgeport-${uid}/control.sock`;
}

/** The control API's default address: a per-user unix socket, or an owner-only named pipe on Windows. */
export function defaultApiUrl(env: Record<string, string | undefined>, uid: number, platform: string): string {
  if (env.EDGEPORT_API) return env.EDGEPORT_API;
  return platform === "win32" ? "npipe:////./pipe/edgeport-control" : `unix://${defaultControlPath(env, uid)}`;
}

const args = {
  relay: {
    type: "string",
    description:
      "The pipe to the VM forwarder: unix:///path, tcp://IP:PORT, exec:COMMAND ARGS, npipe:////./pipe/NAME (required here or in --config)",
    valueHint: "URL",
  },
  engine: {
    type: "string",
    description:
      "The VM's Docker Engine API: unix:///path, tcp://HOST:PORT, npipe:////./pipe/NAME, or none (only the API and docker-proxy publish; default: DOCKER_HOST, else unix:///var/run/docker.sock)",
    valueHint: "URL",
  },
  binding: {
    type: "string",
    description:
      "open: publish exactly what the engine says; local-default: an unspecified host IP becomes 127.0.0.1 and ::1; local-only: everything on loopback",
    default: "local-default",
    valueHint: "POLICY",
  },
  resync: {
    type: "string",
    description: "Full resync with the engine this often (catches anything missed, e.g. across sleep)",
    default: "30s",
    valueHint: "DURATION",
  },
  "pipe-wait": {
    type: "string",
    description: "How long a new connection waits for a down pipe before it is reset",
    default: "5s",
    valueHint: "DURATION",
  },
  api: {
    type: "string",
    description:
      "Control API: unix:///path (default $XDG_RUNTIME_DIR/edgeport/control.sock or /tmp/edgeport-UID/control.sock; EDGEPORT_API), npipe:////./pipe/NAME, tcp://127.0.0.1:PORT (needs --api-token-file), or none",
    valueHint: "URL",
  },
  "api-token-file": {
    type: "string",
    description: "File holding the bearer token a tcp:// API requires",
    valueHint: "PATH",
  },
  config: {
    type: "string",
    description:
      "A TOML or JSON file with any of these options and ignore/reserved rules (schema: docs/config.schema.json); flags given here win (default: EDGEPORT_CONFIG, else edgeport.toml or .json in ~/.config/edgeport, ~/Library/Application Support/edgeport or %APPDATA%\\edgeport, when there)",
    valueHint: "PATH",
  },
  ...udpArgs,
  ...firewallArgs,
  ...pipeArgs,
  ...logArgs,
} as const;

export default defineCommand({
  meta: {
    name: "run",
    description: "Run on the host: publish every container's ports from the VM engine's events, until Ctrl-C",
  },
  args,
  async run({ args: given, rawArgs }) {
    const config = runConfig(given.config, { env: process.env, platform: process.platform, home: homedir() });
    const a = mergeArgs(given, rawArgs, config);
    if (!a.relay)
      throw new EdgeportError("E_BAD_ARG", '--relay is missing (on the command line or as "relay" in --config)');
    applyLogArgs(a);
    const rlog = log.withTag("run");
    if (!(BINDING_POLICIES as readonly string[]).includes(a.binding)) {
      throw new EdgeportError("E_BAD_ARG", `--binding: "${a.binding}" is not one of ${BINDING_POLICIES.join(", ")}`);
    }
    const engine = engineOf(a.engine, process.env);
    const apiText = a.api ?? defaultApiUrl(process.env, process.getuid?.() ?? 0, process.platform);
    const apiUrl = apiText === "none" ? null : parseApiUrl(apiText);
    let apiToken: string | undefined;
    if (a["api-token-file"]) {
      try {
        apiToken = (await Bun.file(a["api-token-file"]).text()).trim();
      } catch (e) {
        throw new EdgeportError(
          "E_BAD_ARG",
          `--api-token-file: cannot read ${a["api-token-file"]}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        );
      }
      if (apiToken.length < 16)
        throw new EdgeportError(
          "E_BAD_ARG",
          `--api-token-file: the token has ${apiToken.length} characters; at least 16 are needed`,
        );
    }
    if (apiUrl?.kind === "tcp" && !apiToken)
      throw new EdgeportError(
        "E_BAD_ARG",
        "--api tcp://... needs --api-token-file: a TCP API without a token would let any local program publish ports",
      );
    const url = parseTransportUrl(a.relay, "connect");
    const settings = pipeSettings(a);
    startSpin(settings, rlog);
    const resyncMs = parseDuration(a.resync, "--resync");
    if (resyncMs < 100) throw new EdgeportError("E_BAD_ARG", `--resync: ${resyncMs} ms is too short (100 ms at least)`);
    const pipeWaitMs = parseDuration(a["pipe-wait"], "--pipe-wait");
    const udp = udpSettings(a);
    const fwMode = parseFirewallMode(a.firewall);
    const flog = log.withTag("firewall");
    const backend = selectBackend(fwMode, {
      run: commandRunner({ dryRun: a["firewall-dry-run"], log: flog }),
      program: process.execPath,
      log: flog,
    });
    const firewall = createFirewall({ backend, log: flog });
    if (backend.name !== "none") {
      await firewall
        .prune()
        .catch((e: Error) =>
          flog.warn(`firewall (${backend.name}): could not look for rules of dead instances: ${e.message}`),
        );
    }
    let daemon: ReturnType<typeof createDaemon> | null = null;
    const relay = createRelayClient({
      url,
      ...settings,
      log: log.withTag("pipe"),
      version: VERSION,
      onOpen: controlChannels(() => daemon, log.withTag("docker-proxy")),
    });
    const rules = portRules(config, apiUrl?.kind === "tcp" ? [apiUrl.port] : []);
    daemon = createDaemon({
      engine,
      relay,
      binding: a.binding as BindingPolicy,
      resyncMs,
      pipeWaitMs,
      udp,
      firewall,
      rules,
      log: rlog,
    });
    const control = apiUrl ? serveControlApi(apiUrl, daemon, { token: apiToken }) : null;
    rlog.info(
      `edgeport ${VERSION}: engine ${engine?.url ?? "none"}, relay ${relay.description}, binding ${a.binding}, firewall ${backend.name}${control ? `, api ${control.url}` : ""}`,
    );
    const running = daemon.run(stop.signal);
    await untilAborted(stop.signal);
    rlog.info("stopping: closing listeners");
    await running;
    await firewall.close();
    control?.close();
    relay.close();
  },
});
