/**
 * The reconciler's brain: a pure plan(wanted, published) returning idempotent actions keyed by
 * the port key. It never flushes: what is published and still wanted stays, untouched.
 */
import type { WantedPort } from "../events/wanted.ts";

export type Action =
  | { kind: "open"; want: WantedPort }
  | { kind: "close"; key: string; was: WantedPort }
  /** same host address, another target (the container got a new address): no rebind */
  | { kind: "retarget"; key: string; want: WantedPort };

export interface Conflict {
  key: string;
  winner: WantedPort;
  loser: WantedPort;
}

export interface Plan {
  actions: Action[];
  conflicts: Conflict[];
}

const sameTarget = (a: WantedPort, b: WantedPort) =>
  a.targetIp === b.targetIp &&
  a.targetPort === b.targetPort &&
  a.containerId === b.containerId &&
  !!a.proxyProtocol === !!b.proxyProtocol;

/**
 * @param wanted every container's wanted ports, containers in priority order (earliest start first)
 * @param published what is bound now, by key
 * @param hold keys not to open in this pass (failed binds wait for the next resync)
 */
export function plan(
  wanted: WantedPort[][],
  published: ReadonlyMap<string, WantedPort>,
  hold: ReadonlySet<string> = new Set(),
): Plan {
  const candidates = new Map<string, WantedPort[]>();
  for (const list of wanted)
    for (const w of list) (candidates.get(w.key) ?? candidates.set(w.key, []).get(w.key)!).push(w);

  const actions: Action[] = [];
  const conflicts: Conflict[] = [];
  for (const [key, was] of published) {
    if (!candidates.has(key)) actions.push({ kind: "close", key, was });
  }
  for (const [key, cands] of candidates) {
    const current = published.get(key);
    // the first one keeps it: the container already published here, else the earliest
    const winner = (current && cands.find((c) => c.containerId === current.containerId)) ?? cands[0]!;
    for (const c of cands)
      if (c !== winner && c.containerId !== winner.containerId) conflicts.push({ key, winner, loser: c });
    if (!current) {
      if (!hold.has(key)) actions.push({ kind: "open", want: winner });
    } else if (!sameTarget(current, winner)) {
      actions.push({ kind: "retarget", key, want: winner });
    }
  }
  // closes first, so a port freed by one container can be taken by another in the same pass
  const order = { close: 0, retarget: 1, open: 2 };
  actions.sort((a, b) => order[a.kind] - order[b.kind]);
  return { actions, conflicts };
}
