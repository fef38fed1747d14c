/**
 * The ad-hoc specs a daemon keeps across restarts, kept in step with its state file
 * (state-file.ts): every change is written before it counts, so what `ls` calls persisted is what
 * the file holds.
 */
import { join } from "node:path";
import type { ConsolaInstance } from "consola";
import { isEdgeportError } from "../shared/errors.ts";
import {
  defaultStateDir,
  ensureStateDir,
  type PersistedPort,
  readStateFile,
  removeStaleTemps,
  type StateFile,
  stateFileName,
  writeStateFile,
} from "./state-file.ts";

export interface PortStore {
  /** the state file */
  readonly path: string;
  list(): PersistedPort[];
  has(p: PersistedPort): boolean;
  /** adds a spec and writes the file; throws (and keeps nothing) when the file cannot be written */
  add(p: PersistedPort): void;
  /** removes a spec and writes the file; false when it was not there */
  remove(p: PersistedPort): boolean;
}

const keyOf = (p: PersistedPort) => `${p.proxyProtocol ? "proxy " : ""}${p.spec}`;

export function createPortStore(
  path: string,
  initial: PersistedPort[],
  o: { api?: string; platform: string; write?: (path: string, data: StateFile) => void },
): PortStore {
  const ports = new Map(initial.map((p) => [keyOf(p), p]));
  const write = o.write ?? ((p: string, d: StateFile) => writeStateFile(p, d, o.platform));
  const save = () => write(path, { version: 1, ...(o.api ? { api: o.api } : {}), ports: [...ports.values()] });
  return {
    path,
    list: () => [...ports.values()],
    has: (p) => ports.has(keyOf(p)),
    add(p) {
      const k = keyOf(p);
      if (ports.has(k)) return;
      ports.set(k, p.proxyProtocol ? { spec: p.spec, proxyProtocol: true } : { spec: p.spec });
      try {
        save();
      } catch (e) {
        ports.delete(k);
        throw e;
      }
    },
    remove(p) {
      const k = keyOf(p);
      const was = ports.get(k);
      if (!was) return false;
      ports.delete(k);
      try {
        save();
      } catch (e) {
        ports.set(k, was);
        throw e;
      }
      return true;
    },
  };
}

/**
 * The store of a daemon: its state directory checked (or made), stale temp files removed, the file
 * read. A corrupt file is logged as an error and kept aside; the daemon starts with nothing
 * restored. Throws E_PERMISSION for a directory or file another user could control. Without a
 * named directory, a default one that cannot be made (no home directory) is a warning: no store.
 */
export function openPortStore(o: {
  dir?: string;
  api: string;
  defaultApi: string;
  env: Readonly<Record<string, string | undefined>>;
  uid: number;
  platform: string;
  home: string;
  log: ConsolaInstance;
}): PortStore | undefined {
  const dir = o.dir ?? defaultStateDir(o.env, o.uid, o.platform, o.home);
  try {
    ensureStateDir(dir, o.uid, o.platform, o.dir !== undefined);
  } catch (e) {
    if (o.dir !== undefined || !isEdgeportError(e) || !/cannot create it/.test(e.message)) throw e;
    o.log.warn(`${e.message}; ad-hoc ports will not be restored after a restart (name a directory with --state-dir)`);
    return undefined;
  }
  const path = join(dir, stateFileName(o.api, o.defaultApi));
  removeStaleTemps(path);
  const r = readStateFile(path, o.uid, o.platform);
  if ("problem" in r)
    o.log.error(`state file ${path}: ${r.problem}; kept aside as ${r.keptAs}, and no ad-hoc port was restored`);
  return createPortStore(path, r.ports, { api: o.api, platform: o.platform });
}
