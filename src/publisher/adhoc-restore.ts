/**
 * Restoring the ad-hoc specs of the state file when the daemon starts (issue 20, item 3). Each is
 * published as a fresh publish would be, except that one that fails now (its port taken, a
 * conflict) is not rolled back: it stays wanted, reported in the log and the state, retried at
 * each resync, and kept in the file. A spec that cannot even be resolved yet (its container is not
 * running, the engine is down) waits in a pending list, retried at each resync. Nothing here
 * throws: a restart never fails because of a spec.
 */
import type { ConsolaInstance } from "consola";
import type { EdgeportError } from "../shared/errors.ts";
import type { AdhocEntry, PortSource } from "./adhoc.ts";
import type { PortStore } from "./port-store.ts";
import type { PersistedPort } from "./state-file.ts";

export interface RestoreHost {
  store?: PortStore;
  log: ConsolaInstance;
  entryOf(spec: string, source: PortSource, proxyProtocol: boolean): Promise<AdhocEntry>;
  /** whether an entry of this id is published (or wanted) already */
  has(id: string): boolean;
  /** makes the entries wanted (kept when they fail) and waits for their binds */
  add(entries: AdhocEntry[]): Promise<void>;
  problemsOf(e: AdhocEntry): EdgeportError[];
}

export interface Restorer {
  /** restores every spec of the state file */
  restore(): Promise<void>;
  /** the specs that could not be resolved yet, once more */
  retry(): Promise<void>;
  /** unpublishes a pending spec (given as written); false when none is */
  unpublish(spec: string): boolean;
  /** removes an unpublished spec from the state file (a failed write is logged) */
  forget(p: PersistedPort): void;
}

export function createRestorer(h: RestoreHost): Restorer {
  let pending: PersistedPort[] = [];
  const said = new Map<string, string>();
  const where = () => `restored from ${h.store?.path}`;

  async function resolve(list: PersistedPort[]): Promise<AdhocEntry[]> {
    const entries: AdhocEntry[] = [];
    pending = [];
    for (const p of list) {
      try {
        const e = await h.entryOf(p.spec, "ad-hoc", !!p.proxyProtocol);
        if (!h.has(e.id) && !entries.some((x) => x.id === e.id)) entries.push(e);
        said.delete(p.spec);
      } catch (err) {
        pending.push(p);
        const msg = (err as Error).message;
        if (said.get(p.spec) !== msg)
          h.log.error(`ad-hoc ${p.spec} (${where()}): ${msg}; trying again at the next resync`);
        said.set(p.spec, msg);
      }
    }
    return entries;
  }

  async function publish(list: PersistedPort[]): Promise<void> {
    const entries = await resolve(list);
    if (!entries.length) return;
    await h.add(entries);
    for (const e of entries) {
      const problems = h.problemsOf(e);
      if (problems.length)
        h.log.warn(`ad-hoc ${e.id} (${where()}): ${e.spec} is wanted but not published: ${problems[0]!.message}`);
      else h.log.info(`ad-hoc ${e.id}: published ${e.spec} (${where()})`);
    }
  }

  return {
    async restore() {
      if (h.store) await publish(h.store.list());
    },
    async retry() {
      if (pending.length) await publish(pending);
    },
    unpublish(spec) {
      const p = pending.find((x) => x.spec === spec);
      if (!p) return false;
      pending = pending.filter((x) => x !== p);
      this.forget(p);
      h.log.info(`ad-hoc ${spec}: unpublished (it was waiting to be restored)`);
      return true;
    },
    forget(p) {
      try {
        h.store?.remove(p);
      } catch (err) {
        h.log.error(`ad-hoc ${p.spec}: cannot remove it from ${h.store?.path}: ${(err as Error).message}`);
      }
    },
  };
}
