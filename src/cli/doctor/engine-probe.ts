/** Asks the engine what doctor needs: its version, its clock, the running containers. */
import { z } from "zod";
import { createEngine, type Engine, parseEngineUrl } from "../../events/engine.ts";
import type { ContainerInspect } from "../../events/schemas.ts";
import type { EngineChoice } from "../engine-discovery.ts";
import type { ClockSample, EngineFacts } from "./engine.ts";

const Info = z.object({ SystemTime: z.string().optional() });

/** The engine's clock: /info's SystemTime (nanoseconds), else the answer's Date header (seconds). */
async function clockOf(url: string, now: () => number, timeoutMs: number): Promise<ClockSample | undefined> {
  const { base, unix } = parseEngineUrl(url);
  const sentAt = now();
  const res = await fetch(`${base}/info`, {
    ...(unix ? { unix } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  } as RequestInit);
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

export async function probeEngine(
  choice: EngineChoice,
  o: { now?: () => number; timeoutMs?: number } = {},
): Promise<{ facts: EngineFacts; engine: Engine | null }> {
  if (choice.url === "none") return { facts: { choice }, engine: null };
  const timeoutMs = o.timeoutMs ?? 3000;
  let engine: Engine;
  try {
    engine = createEngine(choice.url, timeoutMs);
    const version = await engine.negotiate();
    const clock = await clockOf(choice.url, o.now ?? Date.now, timeoutMs).catch(() => undefined);
    return { facts: { choice, version, ...(clock ? { clock } : {}) }, engine };
  } catch (e) {
    // the engine's own message names the URL, which the line already shows
    const why = (e as Error).message
      .replace(`engine ${choice.url} unreachable: `, "")
      .replace(/: Was there a typo.*$/, "");
    return { facts: { choice, error: why }, engine: null };
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
