import { defineCommand } from "citty";
import { commandRunner, createFirewall, isAlive, parseFirewallMode, selectBackend } from "../firewall/index.ts";
import { log } from "../shared/log.ts";
import { applyLogArgs, logArgs, printJson } from "./common.ts";
import { contextOf, type ProcessContext } from "./context.ts";

const modeArg = {
  firewall: {
    type: "string",
    description: "Backend: auto (per OS), nftables, windows, macos, none",
    default: "auto",
    valueHint: "MODE",
  },
} as const;

const backendOf = (a: { firewall: string; "dry-run"?: boolean }, ctx: ProcessContext) =>
  selectBackend(parseFirewallMode(a.firewall), {
    run: commandRunner({ dryRun: a["dry-run"], print: (l) => console.log(l) }),
    program: ctx.execPath,
    platform: ctx.platform,
    uid: ctx.uid,
    env: ctx.env,
  });

const ls = defineCommand({
  meta: {
    name: "ls",
    description: "List the firewall rules edgeport instances wrote, with their owner and whether it still runs",
  },
  args: { ...modeArg, json: { type: "boolean", description: "One JSON array instead of a table" }, ...logArgs },
  async run({ args: a, data }) {
    applyLogArgs(a);
    const backend = backendOf(a, contextOf(data));
    const rules = await backend.list();
    const rows = rules.map((r) => ({
      rule: r.id,
      instance: r.instance,
      pid: r.pid,
      running: r.pid > 0 ? isAlive(r.pid, r.start) : null,
      where: r.where,
    }));
    if (a.json) {
      printJson(rows);
      return;
    }
    if (!rows.length) {
      console.log(`no edgeport rules (${backend.name})`);
      return;
    }
    const table = [
      ["RULE", "INSTANCE", "PID", "OWNER", "WHERE"],
      ...rows.map((r) => [
        r.rule,
        r.instance,
        String(r.pid),
        r.running === null ? "-" : r.running ? "running" : "dead",
        r.where,
      ]),
    ];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    for (const row of table)
      console.log(
        row
          .map((c, i) => c.padEnd(widths[i]!))
          .join("  ")
          .trimEnd(),
      );
  },
});

const prune = defineCommand({
  meta: {
    name: "prune",
    description: "Remove the firewall rules of edgeport instances that no longer run (--all: every edgeport rule)",
  },
  args: {
    ...modeArg,
    all: {
      type: "boolean",
      description: "Also remove the rules of running instances (they are not re-added until their ports change)",
    },
    "dry-run": { type: "boolean", description: "Print the commands instead of running them" },
    ...logArgs,
  },
  async run({ args: a, data }) {
    applyLogArgs(a);
    const ctx = contextOf(data);
    const backend = backendOf(a, ctx);
    if (a.all) {
      const all = (await backend.list()).filter((r) => r.pid > 0);
      if (all.length) await backend.apply([], all, { instance: "00000000", pid: ctx.pid }, []);
      console.log(`${a["dry-run"] ? "would remove" : "removed"} ${all.length} rule(s)`);
      return;
    }
    const fw = createFirewall({ backend, log: log.withTag("firewall"), pid: ctx.pid });
    const removed = await fw.prune();
    console.log(`${a["dry-run"] ? "would remove" : "removed"} ${removed.length} rule(s) of dead instances`);
  },
});

export default defineCommand({
  meta: {
    name: "firewall",
    description: "Inspect and clean the host firewall rules edgeport writes for non-loopback listeners",
  },
  subCommands: { ls, prune },
});
