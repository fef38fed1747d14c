/**
 * The reported listeners the forwarder may dial: a target (the VM address and port a listener is
 * dialled on, targetOf) passes when the host said it publishes it (its allow line on a listeners
 * channel still open) and something still listens there. Nothing else is let through by this: the
 * rest of the VM's loopback stays refused by the dial policy. Pure, with an injected clock for
 * the short wait below.
 */
import { idKey, type ListenerId, targetOf } from "../../control/listeners.ts";

/** An Open may overtake the host's allow line on the pipe (Opens go first): it waits this long for it. */
export const ALLOW_WAIT_MS = 500;

export interface ListenerAllowance {
  /** the host's allow list on one channel (replaces what that channel said before) */
  setAllowed(channel: object, targets: readonly string[]): void;
  /** a channel ended: what it allowed is gone */
  drop(channel: object): void;
  /** what listens now (reported, not excluded) */
  setListening(listeners: readonly ListenerId[]): void;
  /** whether this target may be dialled: listening and allowed (waits up to ALLOW_WAIT_MS for an allow line) */
  allows(target: ListenerId): Promise<boolean>;
}

export function createListenerAllowance(waitMs = ALLOW_WAIT_MS): ListenerAllowance {
  const allowed = new Map<object, ReadonlySet<string>>();
  let listening = new Set<string>();
  const waiters = new Set<() => void>();
  const now = (key: string) => listening.has(key) && [...allowed.values()].some((s) => s.has(key));
  const wake = () => {
    for (const w of waiters) w();
  };
  return {
    setAllowed(channel, targets) {
      allowed.set(channel, new Set(targets));
      wake();
    },
    drop(channel) {
      allowed.delete(channel);
    },
    setListening(listeners) {
      listening = new Set(listeners.map((l) => idKey(targetOf(l))));
    },
    async allows(target) {
      const key = idKey(target);
      if (now(key)) return true;
      if (!listening.has(key) || allowed.size === 0) return false;
      // listening, but the host's word about it may still be on its way
      return await new Promise<boolean>((resolve) => {
        const done = (v: boolean) => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(v);
        };
        const check = () => now(key) && done(true);
        const timer = setTimeout(() => done(now(key)), waitMs);
        waiters.add(check);
      });
    },
  };
}
