/** A container named as an ad-hoc spec's TARGET, resolved through the engine to its address. */
import type { Engine } from "../events/engine.ts";
import type { ContainerInspect } from "../events/schemas.ts";
import { targetAddress } from "../events/wanted.ts";
import { EdgeportError } from "../shared/errors.ts";

/** The address of a running container by name or id. Throws E_BAD_SPEC (no such, not running, no IP), E_DIAL. */
export async function resolveTarget(engine: Engine | null, name: string): Promise<string> {
  if (!engine)
    throw new EdgeportError(
      "E_BAD_SPEC",
      `target "${name}" is not an IP address, and this daemon follows no engine to resolve container names`,
    );
  let c: ContainerInspect | null;
  try {
    c = await engine.inspect(name);
  } catch (e) {
    throw new EdgeportError("E_DIAL", `cannot resolve container "${name}": ${(e as Error).message}`);
  }
  if (!c) throw new EdgeportError("E_BAD_SPEC", `no container named "${name}"`);
  if (!c.State.Running) throw new EdgeportError("E_BAD_SPEC", `container "${name}" is not running`);
  const ip = targetAddress(c);
  if (!ip) throw new EdgeportError("E_BAD_SPEC", `container "${name}" has no IP address (host network, or none)`);
  return ip;
}
