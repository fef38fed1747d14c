import { networkInterfaces } from "node:os";
import { defineCommand } from "citty";
import { createEngine, parseEngineUrl } from "../events/engine.ts";
import { createDialPolicy } from "../relay/forwarder/dial-policy.ts";
import { startForwarder } from "../relay/forwarder/forwarder.ts";
import { createListenerAllowance } from "../relay/forwarder/listeners/allowance.ts";
import { followListening, type ListenerReporting } from "../relay/forwarder/listeners/report-channel.ts";
import { createListenerWatcher } from "../relay/forwarder/listeners/watcher.ts";
import { parseTransportUrl } from "../relay/transports/url.ts";
import { mergeArgs } from "../shared/config.ts";
import { configPath, loadConfig } from "../shared/config-file.ts";
import { parseDuration } from "../shared/duration.ts";
import { EdgeportError } from "../shared/errors.ts";
import { raiseFdLimit } from "../shared/fd-limit.ts";
import { log } from "../shared/log.ts";
import { applyLogArgs, logArgs, pipeArgs, pipeSettings, repeated, startSpin, untilAborted, VERSION } from "./common.ts";
import { contextOf, stop } from "./context.ts";

const args = {
  listen: {
    type: "string",
    description:
      "Where to accept the pipe: unix:///path, tcp://IP:PORT, vsock://any:PORT, fd://N (an inherited listening socket, e.g. systemd socket activation), stdio:, npipe:////./pipe/NAME (required here or in --config)",
    valueHint: "URL",
  },
  allow: {
    type: "string",
    description:
      "Destination the forwarder may dial: a CIDR (172.17.0.0/16) or unix:///path; repeatable. Loopback and link-local need an allow of their own; the VM's own addresses and a subnet's network and broadcast addresses one that names them (/32, /128)",
    valueHint: "CIDR",
  },
  engine: {
    type: "string",
    description:
      "Also allow the subnets of this engine's networks, and its socket for the host's edgeport run --engine vm:///PATH (unix:///var/run/docker.sock)",
    valueHint: "URL",
  },
  "vpnkit-compat": {
    type: "boolean",
    description:
      "Behave like a plain vpnkit forwarder: empty handshake, 64 KiB windows, no extensions (for interoperability tests)",
    default: false,
  },
  "control-listen": {
    type: "string",
    description:
      "A VM-local unix socket (unix:///run/edgeport/control.sock) for edgeport docker-proxy: its requests go to the host over the pipe",
    valueHint: "URL",
  },
  "report-listeners": {
    type: "boolean",
    description:
      "Report what listens in the VM itself (TCP and UDP, read every 250 ms) to the host, which publishes it on its loopback; those listeners, and only those, may then be dialled on the VM's loopback",
    default: false,
  },
  "dial-timeout": {
    type: "string",
    description: "Give up dialling a destination after this long",
    default: "10s",
    valueHint: "DURATION",
  },
  config: {
    type: "string",
    description:
      "A TOML or JSON file with any of these options (schema: docs/forwarder.config.schema.json); flags given here win",
    valueHint: "PATH",
  },
  ...pipeArgs,
  ...logArgs,
} as const;

/** A bad --allow value (from the flag or the config's allow) is blamed on --allow. */
function allowFlag<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof EdgeportError && !e.message.startsWith("--allow"))
      throw new EdgeportError(e.code, `--allow: ${e.message}`);
    throw e;
  }
}

function controlPathOf(u: string | undefined): string | undefined {
  if (u === undefined) return undefined;
  const path = u.startsWith("unix://") ? u.slice(7) : u;
  if (!path.startsWith("/"))
    throw new EdgeportError("E_BAD_URL", `--control-listen "${u}" must be unix:///absolute/path`);
  return path;
}

/** How long a read of the VM's interface addresses is trusted (each read costs ~40 us). */
const INTERFACES_TTL_MS = 1000;

/**
 * The VM's own interface addresses ("172.17.0.1/16"), for the dial policy: read at start, again at
 * a check once the last read is older than INTERFACES_TTL_MS, and at once after `invalidate()`
 * (the engine's networks changed: a new bridge may have come with them).
 */
export function interfaceAddresses(read = networkInterfaces, now = Date.now) {
  let at = Number.NEGATIVE_INFINITY;
  let cached: string[] = [];
  return {
    get(): readonly string[] {
      if (now() - at < INTERFACES_TTL_MS) return cached;
      cached = Object.values(read()).flatMap((addrs) => (addrs ?? []).flatMap((a) => (a.cidr ? [a.cidr] : [])));
      at = now();
      return cached;
    },
    invalidate(): void {
      at = Number.NEGATIVE_INFINITY;
    },
  };
}

/** --report-listeners: the watcher and the allowance it feeds (null when off). */
function listenerReporting(
  on: boolean,
  platform: string,
  flog: typeof log,
): (ListenerReporting & { stop(): void }) | null {
  if (!on) return null;
  if (platform !== "linux")
    throw new EdgeportError("E_UNSUPPORTED", "--report-listeners reads Linux's socket tables: the VM must run Linux");
  const watcher = createListenerWatcher({
    onTooMany: (n) => flog.warn(`${n} listeners in the VM: only the first 16384 are reported`),
  });
  const r = { watcher, allowance: createListenerAllowance() };
  const unfollow = followListening(r);
  return {
    ...r,
    stop() {
      unfollow();
      watcher.close();
    },
  };
}

export default defineCommand({
  meta: {
    name: "forwarder",
    description: "Run inside the VM: accept the pipe from the host and dial containers for each channel",
  },
  args,
  async run({ args: given, rawArgs, data }) {
    const ctx = contextOf(data);
    const file = configPath(given.config, { env: {}, platform: ctx.platform, home: "", defaults: false });
    const config = file ? loadConfig(file, "forwarder") : {};
    const a = mergeArgs(given, rawArgs, config);
    if (!a.listen)
      throw new EdgeportError("E_BAD_ARG", '--listen is missing (on the command line or as "listen" in --config)');
    applyLogArgs(a);
    raiseFdLimit(); // soft RLIMIT_NOFILE up to the hard limit, as Go does: one fd per client connection
    const flog = log.withTag("forwarder");
    const listen = parseTransportUrl(a.listen, "listen");
    const settings = pipeSettings(a, ctx);
    const activity = startSpin(settings, flog);
    const engine = a.engine ? createEngine(a.engine) : null;
    const reporting = listenerReporting(a["report-listeners"], ctx.platform, flog);
    // the engine's own socket may be opened by the host (edgeport run --engine vm:///path)
    const engineSocket = a.engine?.startsWith("unix://") ? parseEngineUrl(a.engine).unix : undefined;
    const local = interfaceAddresses();
    local.get();
    const policy = allowFlag(() =>
      createDialPolicy({
        allow: repeated(rawArgs, "allow").length ? repeated(rawArgs, "allow") : (config.allow ?? []),
        ...(engineSocket ? { engineSocket } : {}),
        engineSubnets: engine
          ? () =>
              engine.subnets().finally(() => {
                local.invalidate();
              })
          : undefined,
        localInterfaces: local.get,
        ...(reporting ? { reportedListener: (t) => reporting.allowance.allows(t) } : {}),
      }),
    );
    if (engine) {
      await policy
        .refresh()
        .catch((e: Error) => flog.warn(`${e.message}; engine networks will be asked again at the next refused open`));
    }
    if (a["vpnkit-compat"] && settings.secret)
      throw new EdgeportError(
        "E_BAD_ARG",
        "--vpnkit-compat cannot be combined with --token-file (vpnkit has no pipe secret)",
      );
    const dialTimeoutMs = parseDuration(a["dial-timeout"], "--dial-timeout");
    let ended!: () => void;
    const stdioEnded = new Promise<void>((r) => (ended = r));
    const fwd = startForwarder({
      listen,
      policy,
      pipe: { ...settings, plain: a["vpnkit-compat"] },
      dialTimeoutMs,
      log: flog,
      version: VERSION,
      onStdioEnd: () => ended(),
      controlListen: controlPathOf(a["control-listen"]),
      activity,
      ...(reporting ? { listeners: reporting } : {}),
    });
    flog.info(
      `listening on ${fwd.address}; may dial: ${policy.describe()}${fwd.controlPath ? `; docker-proxy control socket unix://${fwd.controlPath}` : ""}`,
    );
    if (policy.allowsNothing)
      flog.warn("nothing is allowed: every open will be refused (add --allow CIDR or --engine URL)");
    if (!settings.secret)
      flog.info("no pipe secret (--token-file): any process that reaches the listen address may use this forwarder");
    await Promise.race([untilAborted(stop.signal), stdioEnded]);
    flog.info("stopping");
    fwd.close();
    reporting?.stop();
  },
});
