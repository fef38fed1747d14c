import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname } from "node:path";
import { defineCommand } from "citty";
import type { ConsolaInstance } from "consola";
import { createEngine, type Engine, type EngineRequest, parseNamedUrl } from "../events/engine.ts";
import { BINDING_POLICIES, type BindingPolicy } from "../events/wanted.ts";
import { commandRunner, createFirewall, parseFirewallMode, selectBackend } from "../firewall/index.ts";
import { type ApiUrl, formatApiUrl, parseApiUrl, serveControlApi } from "../publisher/control-api.ts";
import { controlChannels } from "../publisher/control-channel.ts";
import { createDaemon, type Daemon } from "../publisher/daemon.ts";
import { refuseLiveDaemon } from "../publisher/live-daemon.ts";
import { openPortStore, type PortStore } from "../publisher/port-store.ts";
import { createVmSource } from "../publisher/vm-source.ts";
import { channelStreams } from "../relay/host/channel-stream.ts";
import { createRelayClient, type RelayClient } from "../relay/host/relay-client.ts";
import { LISTENERS_DEST } from "../relay/mux/constants.ts";
import { parseTransportUrl } from "../relay/transports/url.ts";
import { mergeArgs, portRules } from "../shared/config.ts";
import { configPath, loadConfig } from "../shared/config-file.ts";
import { vmListenerRules } from "../shared/config-vm-listeners.ts";
import { defaultApiUrl, defaultControlDir, ensureNamedDir, ensurePrivateDir } from "../shared/control-socket.ts";
import { parseDuration } from "../shared/duration.ts";
import { EdgeportError } from "../shared/errors.ts";
import { raiseFdLimit } from "../shared/fd-limit.ts";
import { log } from "../shared/log.ts";
import { streamRequest } from "../shared/pipe-http-client.ts";
import { readSecretFile } from "../shared/secret-file.ts";
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
import { contextOf, type ProcessContext } from "./context.ts";
import { discoverEngine, type EngineChoice } from "./engine-discovery.ts";
import { BUILD_VERSION } from "./version.ts";

/** How long an engine request waits for a down pipe: less than the request's own 5 s, so the pipe is named as the cause. */
const ENGINE_PIPE_WAIT_MS = 3000;

/** The engine to follow: --engine, the config's, DOCKER_HOST, the docker CLI's context, the default. */
function engineHere(ctx: ProcessContext, flag?: string, config?: string, configPath?: string) {
  const read = (path: string): string | null => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return null;
    }
  };
  return discoverEngine({
    flag,
    config,
    configPath,
    env: ctx.env,
    platform: ctx.platform,
    home: homedir(),
    read,
  });
}

/** --relay, checked first (a bad engine URL is named here too); a vm:/// engine needs it all the more. */
function requireRelay(relay: string | undefined, found: EngineChoice): string {
  const inVm = found.url === "none" ? undefined : parseNamedUrl(found.url, found.source).vm;
  if (relay && !(inVm && relay === "none")) return relay;
  throw new EdgeportError(
    "E_BAD_ARG",
    inVm
      ? `the engine ${found.url} (from ${found.source}) is inside the VM and is reached through the pipe, but ${relay ? "--relay is none" : "--relay is missing"}: give the pipe with --relay URL (or "relay" in --config)`
      : '--relay is missing (on the command line or as "relay" in --config)',
  );
}

/**
 * The engine client: a vm:/// engine is asked over channels of the pipe, each Open naming its
 * unix path in the VM; a request waits a little for a down pipe, then fails saying so.
 */
function followEngine(found: EngineChoice, relay: RelayClient, pipeWaitMs: number): Engine | null {
  if (found.url === "none") return null;
  const path = parseNamedUrl(found.url, found.source).vm;
  if (!path) return createEngine(found.url, undefined, found.source);
  const streams = channelStreams(relay, { proto: "unix", path }, Math.min(pipeWaitMs, ENGINE_PIPE_WAIT_MS));
  const send: EngineRequest = (url, init) => streamRequest(streams, url, init);
  return createEngine(found.url, undefined, found.source, send, `through the pipe ${relay.description}`);
}

export { defaultApiUrl, defaultControlPath } from "../shared/control-socket.ts";

const args = {
  relay: {
    type: "string",
    description:
      "The pipe to the VM forwarder: unix:///path, tcp://IP:PORT, vsock://CID:PORT, exec:COMMAND ARGS, npipe:////./pipe/NAME (required here or in --config)",
    valueHint: "URL",
  },
  engine: {
    type: "string",
    description:
      "The VM's Docker Engine API: unix:///path, tcp://HOST:PORT, npipe:////./pipe/NAME, vm:///path (a socket inside the VM, reached through the pipe: vm:///var/run/docker.sock), or none (only the API and docker-proxy publish; default: DOCKER_HOST, else the docker CLI's context (DOCKER_CONTEXT, currentContext), else unix:///var/run/docker.sock)",
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
      "Control API: unix:///path (default /run/edgeport/api.sock for root, else $XDG_RUNTIME_DIR/edgeport/control.sock or /tmp/edgeport-UID/control.sock; EDGEPORT_API), npipe:////./pipe/NAME, tcp://127.0.0.1:PORT (needs --api-token-file), or none",
    valueHint: "URL",
  },
  "api-token-file": {
    type: "string",
    description: "File holding the bearer token a tcp:// API requires",
    valueHint: "PATH",
  },
  "state-dir": {
    type: "string",
    description:
      "Where the ad-hoc ports published through the API are kept, to be restored at the next start: an owner-only directory (default: EDGEPORT_STATE_DIR, else /var/lib/edgeport for root, $XDG_STATE_HOME/edgeport or ~/.local/state/edgeport, ~/Library/Application Support/edgeport, %LOCALAPPDATA%\\edgeport), or none",
    valueHint: "DIR",
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

/**
 * --api and --api-token-file, checked before anything starts: the token file's owner and mode,
 * and the socket's directory (edgeport's own default one strictly, a named one by its owner).
 */
function controlApiSettings(
  a: { api?: string; "api-token-file"?: string },
  ctx: ProcessContext,
): { apiUrl: ApiUrl | null; apiToken?: string } {
  const apiText = a.api ?? defaultApiUrl(ctx.env, ctx.uid, ctx.platform);
  const apiUrl = apiText === "none" ? null : parseApiUrl(apiText);
  let apiToken: string | undefined;
  if (a["api-token-file"]) {
    apiToken = readSecretFile("--api-token-file", a["api-token-file"], ctx);
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
  if (apiUrl?.kind === "unix") {
    const dir = dirname(apiUrl.path);
    if (dir === defaultControlDir(ctx.env, ctx.uid, ctx.platform)) ensurePrivateDir(dir, ctx.uid);
    else ensureNamedDir(dir, ctx.uid);
  }
  return { apiUrl, apiToken };
}

/**
 * The state file of ad-hoc ports (after the live-daemon check: never touch a running daemon's
 * file). Refuses (throws) a directory or file another user could control; without --state-dir a
 * default directory that cannot be made (no home) only means nothing is kept.
 */
function portStore(given: string | undefined, apiUrl: ApiUrl | null, ctx: ProcessContext, log: ConsolaInstance) {
  const defaultApi = formatApiUrl(parseApiUrl(defaultApiUrl(ctx.env, ctx.uid, ctx.platform)));
  const o = { ...ctx, home: homedir(), defaultApi, dir: given ?? ctx.env.EDGEPORT_STATE_DIR };
  let store: PortStore | undefined;
  if (apiUrl && o.dir !== "none") store = openPortStore({ ...o, api: formatApiUrl(apiUrl), log });
  return store;
}

export default defineCommand({
  meta: {
    name: "run",
    description: "Run on the host: publish every container's ports from the VM engine's events, until Ctrl-C",
  },
  args,
  async run({ args: given, rawArgs, data }) {
    const ctx = contextOf(data);
    const file = configPath(given.config, { env: ctx.env, platform: ctx.platform, home: homedir(), defaults: true });
    const config = file ? loadConfig(file) : {};
    const a = mergeArgs(given, rawArgs, config);
    const found = engineHere(ctx, given.engine, config.engine, file);
    const relayText = requireRelay(a.relay, found);
    applyLogArgs(a);
    raiseFdLimit(); // soft RLIMIT_NOFILE up to the hard limit, as Go does: one fd per client connection
    const rlog = log.withTag("run");
    if (!(BINDING_POLICIES as readonly string[]).includes(a.binding)) {
      throw new EdgeportError("E_BAD_ARG", `--binding: "${a.binding}" is not one of ${BINDING_POLICIES.join(", ")}`);
    }
    const { apiUrl, apiToken } = controlApiSettings(a, ctx);
    if (apiUrl) await refuseLiveDaemon(apiUrl); // before anything is started: a live daemon keeps its socket
    const store = portStore(a["state-dir"], apiUrl, ctx, rlog);
    const url = parseTransportUrl(relayText, "connect");
    const settings = pipeSettings(a, ctx);
    const activity = startSpin(settings, rlog);
    const resyncMs = parseDuration(a.resync, "--resync");
    if (resyncMs < 100) throw new EdgeportError("E_BAD_ARG", `--resync: ${resyncMs} ms is too short (100 ms at least)`);
    const pipeWaitMs = parseDuration(a["pipe-wait"], "--pipe-wait");
    const udp = udpSettings(a);
    const fwMode = parseFirewallMode(a.firewall);
    const flog = log.withTag("firewall");
    const backend = selectBackend(fwMode, {
      run: commandRunner({ dryRun: a["firewall-dry-run"], log: flog }),
      program: ctx.execPath,
      platform: ctx.platform,
      uid: ctx.uid,
      env: ctx.env,
      log: flog,
    });
    const firewall = createFirewall({ backend, log: flog, pid: ctx.pid });
    if (backend.name !== "none") {
      await firewall
        .prune()
        .catch((e: Error) =>
          flog.warn(`firewall (${backend.name}): could not look for rules of dead instances: ${e.message}`),
        );
    }
    const rules = portRules(config, apiUrl?.kind === "tcp" ? [apiUrl.port] : []);
    const vm = createVmSource(vmListenerRules(config, rules.reserved), log.withTag("vm"));
    let daemon: ReturnType<typeof createDaemon> | null = null;
    const proxyChannels = controlChannels(() => daemon, log.withTag("docker-proxy"));
    const relay = createRelayClient({
      url,
      pipe: settings,
      log: log.withTag("pipe"),
      version: VERSION,
      onOpen: (s, ch, dest) =>
        dest.proto === "unix" && dest.path === LISTENERS_DEST ? vm.accept(s, ch) : proxyChannels(s, ch, dest),
      activity,
    });
    const engine = followEngine(found, relay, pipeWaitMs);
    daemon = createDaemon({
      engine,
      relay,
      binding: a.binding as BindingPolicy,
      resyncMs,
      pipeWaitMs,
      udp,
      firewall,
      rules,
      vm,
      log: rlog,
      store,
      version: BUILD_VERSION,
    });
    const control = apiUrl ? serveControlApi(apiUrl, daemon, { token: apiToken, pid: ctx.pid }) : null;
    rlog.info(
      `edgeport ${VERSION}: engine ${found.url} (from ${found.source}${engine?.via ? `, ${engine.via}` : ""}), relay ${relay.description}, binding ${a.binding}, firewall ${backend.name}${control ? `, api ${control.url}` : ""}${store ? `, state ${store.path}` : ""}`,
    );
    const running = daemon.run(ctx.signal);
    void publishFromConfig(daemon, config.publish ?? [], rlog);
    await untilAborted(ctx.signal);
    rlog.info("stopping: closing listeners");
    await running;
    await firewall.close();
    control?.close();
    relay.close();
  },
});

/** The config's "publish" specs, one after another (a failure is logged, the rest still publish); never
 * written to the state file: the config says them at each start, and one removed from it stays gone. */
async function publishFromConfig(daemon: Daemon, specs: string[], rlog: ConsolaInstance): Promise<void> {
  for (const spec of specs)
    await daemon
      .publish(spec, "ad-hoc", { keep: false })
      .catch((e: Error) => rlog.error(`config "publish" ${JSON.stringify(spec)}: ${e.message}`));
}
