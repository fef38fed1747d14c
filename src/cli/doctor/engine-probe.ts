/** Asks the engine what doctor needs: its version, its clock, the running containers. */
import { createConsola } from "consola";
import { z } from "zod";
import { createEngine, type Engine, type EngineRequest, engineRequest, parseEngineUrl } from "../../events/engine.ts";
import type { ContainerInspect } from "../../events/schemas.ts";
import { channelStreams } from "../../relay/host/channel-stream.ts";
import { createRelayClient } from "../../relay/host/relay-client.ts";
import type { TransportUrl } from "../../relay/transports/url.ts";
import { streamRequest } from "../../shared/pipe-http-client.ts";
import type { EngineChoice } from "../engine-discovery.ts";
import type { ClockSample, EngineFacts } from "./engine.ts";

const Info = z.object({ SystemTime: z.string().optional() });

/** The engine's clock: /info's SystemTime (nanoseconds), else the answer's Date header (seconds). */
async function clockOf(
  url: string,
  send: EngineRequest,
  now: () => number,
  timeoutMs: number,
): Promise<ClockSample | undefined> {
  const { base } = parseEngineUrl(url);
  const sentAt = now();
  const res = await send(`${base}/info`, { signal: AbortSignal.timeout(timeoutMs) });
  const receivedAt = now();
  const info = Info.safeParse(await res.json().catch(() => ({})));
  const system = info.success && info.data.SystemTime ? Date.parse(info.data.SystemTime) : Number.NaN;
  if (Number.isFinite(system))
    return { sentAt, receivedAt, engineTime: system, resolutionMs: 0, from: "/info SystemTime" };
  const date = Date.parse(res.headers.get("date") ?? "");
  if (Number.isFinite(date))
    return { sentAt, receivedAt, engineTime: date + 500, resolutionMs: 500, from: "the Date header" };
  return undefined;
}

/** The pipe doctor asks a vm:/// engine through (the daemon's relay URL and secret). */
export interface ProbeRelay {
  url: TransportUrl;
  secret?: Uint8Array;
}

/**
 * How doctor reaches the engine: a vm:/// one over channels of a pipe of its own (closed by
 * `close`), every other one as `edgeport run` does.
 */
function reach(choice: EngineChoice, timeoutMs: number, relay?: ProbeRelay) {
  const path = parseEngineUrl(choice.url).vm;
  if (!path) return { send: engineRequest(choice.url), close: () => {} };
  if (!relay)
    throw new Error(
      "it is inside the VM and is reached through the pipe: give doctor the daemon's --relay (or --config)",
    );
  const client = createRelayClient({
    url: relay.url,
    pipe: { secret: relay.secret },
    log: createConsola({ level: -1 }),
  });
  const streams = channelStreams(client, { proto: "unix", path }, timeoutMs);
  const send: EngineRequest = (url, init) => streamRequest(streams, url, init);
  return { send, close: () => client.close(), via: `through the pipe ${client.description}` };
}

export async function probeEngine(
  choice: EngineChoice,
  o: { now?: () => number; timeoutMs?: number; relay?: ProbeRelay } = {},
): Promise<{ facts: EngineFacts; engine: Engine | null; close: () => void }> {
  let close = () => {};
  if (choice.url === "none") return { facts: { choice }, engine: null, close };
  const timeoutMs = o.timeoutMs ?? 3000;
  let via: string | undefined;
  try {
    const way = reach(choice, timeoutMs, o.relay);
    ({ close, via } = way);
    const engine = createEngine(choice.url, timeoutMs, undefined, way.send, via);
    const version = await engine.negotiate();
    const clock = await clockOf(choice.url, way.send, o.now ?? Date.now, timeoutMs).catch(() => undefined);
    return { facts: { choice, version, ...(via ? { via } : {}), ...(clock ? { clock } : {}) }, engine, close };
  } catch (e) {
    // the engine's own message names the URL, which the line already shows
    const why = (e as Error).message
      .replace(`engine ${choice.url} unreachable: `, "")
      .replace(/: Was there a typo.*$/, "");
    close();
    return { facts: { choice, error: why, ...(via ? { via } : {}) }, engine: null, close: () => {} };
  }
}

/** Every running container's inspect, a few at a time. */
export async function runningContainers(engine: Engine, parallel = 8): Promise<ContainerInspect[]> {
  const ids = await engine.runningContainers();
  const out: ContainerInspect[] = [];
  for (let i = 0; i < ids.length; i += parallel) {
    const batch = await Promise.all(ids.slice(i, i + parallel).map((id) => engine.inspect(id)));
    for (const c of batch) if (c) out.push(c);
  }
  return out;
}
