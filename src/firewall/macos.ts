/**
 * macOS Application Firewall (socketfilterfw): its entries are per application, not per port, and
 * tied to the executable's path and code signature. edgeport adds and unblocks its own canonical
 * executable path while it has at least one non-loopback listener, and removes the entry when the
 * last one goes (and at clean exit). No pf anchor: the Application Firewall is what prompts users
 * and what blocks inbound connections to an unsigned or unknown binary; pf is off by default.
 * The entry cannot carry a tag, so "owned" means "this executable's path is listed".
 */
import type { RuleSpec } from "./plan.ts";
import { type Backend, CommandError, type OwnedRule, type Runner } from "./types.ts";

export const SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw";

/** The commands to go from `before` wanted rules to `after`. Pure. */
export function macosCommands(before: number, after: number, program: string): string[][] {
  if (before === 0 && after > 0)
    return [
      [SOCKETFILTERFW, "--add", program],
      [SOCKETFILTERFW, "--unblockapp", program],
    ];
  if (before > 0 && after === 0) return [[SOCKETFILTERFW, "--remove", program]];
  return [];
}

export function createMacosBackend(o: { run: Runner; program: string }): Backend {
  let current = 0;
  return {
    name: "macos",
    async list() {
      const r = await o.run([SOCKETFILTERFW, "--getappblocked", o.program]);
      // "The application ... is permitted" / "... is blocked" / "... is not part of the firewall"
      if (r.code !== 0 || !/permitted/i.test(r.stdout)) return [];
      return [{ instance: "-", pid: -1, id: "(per application)", where: `application ${o.program}`, ref: o.program }]; // untagged: never pruned
    },
    async apply(add: RuleSpec[], _remove: OwnedRule[], owner, after) {
      const before = current;
      for (const argv of macosCommands(before, after.length, o.program)) {
        const r = await o.run(argv, { mutates: true });
        if (r.code !== 0) throw new CommandError(argv, r);
      }
      current = after.length;
      return add.map((s) => ({
        ...owner,
        id: s.id,
        where: `application ${o.program}`,
        ref: o.program,
      }));
    },
  };
}
