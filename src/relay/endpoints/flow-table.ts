/**
 * The flows of one UDP port, one per client address, for the host's UDP listener and the VM's
 * local proxy alike: kept in recency order (traffic either way makes a flow the most recent), a
 * flow idle for `idleMs` is expired, and past `maxFlows` the least recently active one is evicted.
 * Pure: the clock is injected, and the caller owns each flow's sockets: it ends what the table
 * hands back (an evicted or expired flow is already out of the table).
 */

export interface FlowTableOptions {
  idleMs: number;
  maxFlows: number;
  /** milliseconds from any fixed origin (performance.now in the product, a fake in tests) */
  now: () => number;
}

export interface Expired<F> {
  key: string;
  flow: F;
  /** how long it had been idle, ms */
  idleMs: number;
}

interface Entry<F> {
  flow: F;
  last: number;
}

export class FlowTable<F> {
  // Map order is recency order: a flow with traffic is moved to the end
  private readonly flows = new Map<string, Entry<F>>();

  constructor(private readonly o: FlowTableOptions) {}

  get size(): number {
    return this.flows.size;
  }

  get idleMs(): number {
    return this.o.idleMs;
  }

  get maxFlows(): number {
    return this.o.maxFlows;
  }

  get(key: string): F | undefined {
    return this.flows.get(key)?.flow;
  }

  /** The flows, least recently active first. */
  *values(): IterableIterator<F> {
    for (const e of this.flows.values()) yield e.flow;
  }

  /** Traffic on key's flow now: it becomes the most recently active. False when key has none. */
  touch(key: string): boolean {
    const e = this.flows.get(key);
    if (!e) return false;
    e.last = this.o.now();
    this.flows.delete(key);
    this.flows.set(key, e);
    return true;
  }

  /**
   * Adds key's flow as the most recently active. At the cap, the least recently active flow is
   * removed first and returned, for the caller to end.
   */
  add(key: string, flow: F): { key: string; flow: F } | null {
    this.flows.delete(key);
    let evicted: { key: string; flow: F } | null = null;
    if (this.flows.size >= this.o.maxFlows) {
      const [oldKey, oldest] = this.flows.entries().next().value as [string, Entry<F>];
      this.flows.delete(oldKey);
      evicted = { key: oldKey, flow: oldest.flow };
    }
    this.flows.set(key, { flow, last: this.o.now() });
    return evicted;
  }

  /** Forgets key's flow; with `flow`, only if it is that one (a newer flow under the same key stays). */
  delete(key: string, flow?: F): boolean {
    const e = this.flows.get(key);
    if (!e || (flow !== undefined && e.flow !== flow)) return false;
    return this.flows.delete(key);
  }

  /** Removes and returns the flows idle for idleMs or more, least recently active first. */
  expire(): Expired<F>[] {
    const now = this.o.now();
    const out: Expired<F>[] = [];
    for (const [key, e] of this.flows) {
      if (now - e.last < this.o.idleMs) break; // recency order: the rest are newer
      out.push({ key, flow: e.flow, idleMs: now - e.last });
    }
    for (const x of out) this.flows.delete(x.key);
    return out;
  }

  /** Removes and returns every flow, least recently active first. */
  clear(): { key: string; flow: F }[] {
    const out = [...this.flows].map(([key, e]) => ({ key, flow: e.flow }));
    this.flows.clear();
    return out;
  }
}
