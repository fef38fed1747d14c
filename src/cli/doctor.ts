/** `edgeport doctor` and `edgeport why PORT`: usage and composition; the checks live in src/cli/doctor/. */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { defineCommand } from "citty";
import { BINDING_POLICIES, type BindingPolicy } from "../events/wanted.ts";
import { commandRunner, parseFirewallMode } from "../firewall/index.ts";
import { powershellPath } from "../firewall/windows.ts";
import { parseTransportUrl } from "../relay/transports/url.ts";
import { mergeArgs, portRules } from "../shared/config.ts";
import { configPath, loadConfig } from "../shared/config-file.ts";
import { parseDuration } from "../shared/duration.ts";
import { EdgeportError } from "../shared/errors.ts";
import type { ProcessContext } from "../shared/process-context.ts";
import { apiArgs, apiClient } from "./client.ts";
import { applyLogArgs, logArgs, pipeSettings, VERSION } from "./common.ts";
import { contextOf } from "./context.ts";
import { type CheckResult, type DoctorInput, failed, formatResults, runDoctor } from "./doctor/index.ts";
import { describeOwner, type HostSockets, noSockets } from "./doctor/sockets.ts";
import { linuxSockets } from "./doctor/sockets-linux.ts";
import { macosSockets } from "./doctor/sockets-macos.ts";
import { windowsSockets } from "./doctor/sockets-windows.ts";
import { discoverEngine } from "./engine-discovery.ts";
import { StateReply } from "./replies.ts";

const args = {
  config: {
    type: "string",
    description: "The config file edgeport run uses (its engine, relay, secret, rules)",
    valueHint: "PATH",
  },
  engine: {
    type: "string",
    description: "The engine to look at (default: as edgeport run picks it)",
    valueHint: "URL",
  },
  relay: {
    type: "string",
    description: "Try a session on this pipe (default: the config's; without one, the daemon's view of its pipe)",
    valueHint: "URL",
  },
  "token-file": { type: "string", description: "The pipe secret to try the session with", valueHint: "PATH" },
  binding: {
    type: "string",
    description: "The binding policy to assume when no daemon runs",
    default: "local-default",
    valueHint: "POLICY",
  },
  firewall: {
    type: "string",
    description: "The firewall mode to check: auto, nftables, windows, macos, none",
    default: "auto",
    valueHint: "MODE",
  },
  timeout: {
    type: "string",
    description: "How long each probe (engine, pipe, daemon) may take",
    default: "3s",
    valueHint: "DURATION",
  },
  json: { type: "boolean", description: "JSON instead of text: {ok, checks: [{id, verdict, detail, fix, code}]}" },
  ...apiArgs,
  ...logArgs,
} as const;

type Args = { [K in keyof typeof args]?: string } & { json?: boolean; _?: string[] };

function sockets(ctx: ProcessContext): HostSockets & Pick<DoctorInput, "excludedRanges"> {
  const platform = ctx.platform;
  const run = commandRunner();
  if (platform === "linux") return linuxSockets();
  if (platform === "darwin") return macosSockets(run);
  if (platform === "win32") return windowsSockets(run, powershellPath(ctx.env));
  return noSockets;
}

function input(given: Args, rawArgs: string[], ctx: ProcessContext, onlyPort?: number): DoctorInput {
  const file = configPath(given.config, { env: ctx.env, platform: ctx.platform, home: homedir(), defaults: true });
  const config = file ? loadConfig(file) : {};
  const a = mergeArgs(given as Record<string, unknown>, rawArgs, config) as Args;
  applyLogArgs(a);
  if (!(BINDING_POLICIES as readonly string[]).includes(a.binding ?? ""))
    throw new EdgeportError("E_BAD_ARG", `--binding: "${a.binding}" is not one of ${BINDING_POLICIES.join(", ")}`);
  const client = apiClient(a, ctx);
  const host = sockets(ctx);
  const apiPort = /^tcp:\/\/.*:(\d+)$/.exec(client.url)?.[1];
  return {
    engine: discoverEngine({
      flag: given.engine,
      config: config.engine,
      configPath: file,
      env: ctx.env,
      platform: ctx.platform,
      home: homedir(),
      read: (path) => {
        try {
          return readFileSync(path, "utf8");
        } catch {
          return null;
        }
      },
    }),
    ...(a.relay ? { relay: { url: parseTransportUrl(a.relay, "connect"), secret: pipeSettings(a, ctx).secret } } : {}),
    api: {
      url: client.url,
      ...(client.url.startsWith("unix://") ? { unixPath: client.url.slice(7) } : {}),
      async state() {
        const ms = parseDuration(a.timeout ?? "3s", "--timeout");
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
        });
        const asked = client.request("GET", "/v1/debug/state", StateReply).catch((e: Error) => {
          throw new Error(/answers at \S+ \(([^)]*)\)/.exec(e.message)?.[1] ?? e.message);
        });
        const r = await Promise.race([asked, late]).finally(() => clearTimeout(timer));
        if (r.status !== 200)
          throw new Error(`answered ${r.status}: ${(r.body as { message?: string }).message ?? ""}`);
        return r.body as unknown as Awaited<ReturnType<DoctorInput["api"]["state"]>>;
      },
    },
    binding: a.binding as BindingPolicy,
    rules: portRules(config, apiPort ? [Number(apiPort)] : []),
    firewall: {
      mode: parseFirewallMode(a.firewall ?? "auto"),
      run: commandRunner(),
      exists: existsSync,
      program: ctx.execPath,
    },
    sockets: host,
    ...(host.excludedRanges ? { excludedRanges: host.excludedRanges } : {}),
    platform: ctx.platform,
    uid: ctx.uid,
    env: ctx.env,
    version: VERSION,
    timeoutMs: parseDuration(a.timeout ?? "3s", "--timeout"),
    ...(onlyPort !== undefined ? { onlyPort } : {}),
  };
}

/** Prints, and fails the command (exit 1) when a check failed. */
function report(results: CheckResult[], json: boolean | undefined, summary = true): void {
  const bad = failed(results);
  if (json) console.log(JSON.stringify({ ok: bad.length === 0, checks: results }, null, 2));
  else console.log(summary ? formatResults(results) : formatResults(results).split("\n").slice(0, -1).join("\n"));
  if (bad.length)
    throw new EdgeportError(
      bad[0]!.code ?? "E_DIAL",
      `${bad.length} of ${results.length} checks failed: ${bad.map((r) => r.id).join(", ")}`,
    );
}

export const doctor = defineCommand({
  meta: {
    name: "doctor",
    description:
      "Check the engine, the daemon, the pipe, the firewall and every published port; a fix for each problem (exit 1 if any)",
  },
  args,
  async run({ args: a, rawArgs, data }) {
    report(await runDoctor(input(a as Args, rawArgs, contextOf(data))), a.json);
  },
});

export const why = defineCommand({
  meta: {
    name: "why",
    description: "Why a host port is (not) published: the one doctor line for it (exit 1 when it is not)",
  },
  args: { port: { type: "positional", description: "The host port", required: true, valueHint: "PORT" }, ...args },
  async run({ args: a, rawArgs, data }) {
    const port = Number(a.port);
    if (!/^\d{1,5}$/.test(a.port) || port < 1 || port > 65535)
      throw new EdgeportError("E_BAD_ARG", `"${a.port}" is not a port (1-65535)`);
    const i = input(
      a as Args,
      rawArgs.filter((x) => x !== a.port),
      contextOf(data),
      port,
    );
    const all = await runDoctor(i);
    const lines = all.filter((r) => r.port === port);
    if (lines.length) return report(lines, a.json, false);
    const engine = all.find((r) => r.id === "engine");
    if (engine?.verdict === "fail")
      return report(
        [{ ...engine, detail: `cannot tell which container wants port ${port}: ${engine.detail}` }],
        a.json,
        false,
      );
    const held = [...(await i.sockets.listeners("tcp", port)), ...(await i.sockets.listeners("udp", port))];
    const daemon = all.find((r) => r.id === "daemon" && r.verdict === "fail");
    const engineSays =
      i.engine.url === "none"
        ? "no engine is followed (--engine none)"
        : `no running container of ${i.engine.url} publishes host port ${port}`;
    report(
      [
        {
          id: `port ${port}`,
          verdict: "fail",
          port,
          detail: `${engineSays}, and edgeport has no such port${daemon ? ` (${daemon.detail})` : ""}${held.length ? `; held by ${held.map(describeOwner).join("; ")}` : ""}`,
          fix: "publish it: docker run -p PORT:CONTAINER_PORT ..., or edgeport publish SPEC",
          code: "E_NOT_FOUND",
        },
      ],
      a.json,
      false,
    );
  },
});
