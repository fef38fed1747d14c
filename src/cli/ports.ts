/** `edgeport ls`, `edgeport unpublish`, `edgeport status`: the daemon seen through its control API. */
import { defineCommand } from "citty";
import type { PortState } from "../publisher/daemon.ts";
import { EdgeportError, isEdgeportError } from "../shared/errors.ts";
import { apiArgs, apiClient } from "./client.ts";
import { applyLogArgs, EXIT, exitWith, logArgs, printJson, repeated } from "./common.ts";
import { contextOf } from "./context.ts";
import { lsFilter, lsRows, sourceText } from "./ls-rows.ts";
import { PortsReply, StateReply, UnpublishReply } from "./replies.ts";

const bytes = (n = 0) =>
  n < 1024
    ? `${n} B`
    : n < 1 << 20
      ? `${(n / 1024).toFixed(1)} KiB`
      : n < 1 << 30
        ? `${(n / (1 << 20)).toFixed(1)} MiB`
        : `${(n / (1 << 30)).toFixed(2)} GiB`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export const ls = defineCommand({
  meta: {
    name: "ls",
    description: "List the ports the daemon publishes, one row per spec, by port: where from, state, traffic",
  },
  args: {
    format: { type: "string", description: "table or json", default: "table", valueHint: "FORMAT" },
    json: { type: "boolean", description: "Same as --format json" },
    quiet: { type: "boolean", alias: "q", description: "Only the ids, one a line (for edgeport unpublish)" },
    filter: {
      type: "string",
      description: "Only the ports of this container (name or id); repeatable",
      valueHint: "container=NAME",
    },
    ...apiArgs,
    ...logArgs,
  },
  async run({ args: a, rawArgs, data }) {
    applyLogArgs(a);
    const format = a.json ? "json" : a.format;
    if (format !== "table" && format !== "json")
      throw new EdgeportError("E_BAD_ARG", `--format: "${format}" is not one of table, json`);
    const keep = lsFilter(repeated(rawArgs, "filter"));
    const r = await apiClient(a, contextOf(data)).request("GET", "/v1/ports", PortsReply);
    const rows = lsRows(r.body as unknown as PortState[]).filter(keep);
    if (a.quiet) {
      for (const id of new Set(rows.map((x) => x.id))) console.log(id);
      return;
    }
    if (format === "json") return printJson(rows);
    const lines = [["ID", "PORTS", "SOURCE", "STATE", "CONNS", "IN", "OUT", "CONTAINER"]];
    for (const p of rows) {
      lines.push([
        p.id,
        `${p.ports}${p.proxyProtocol ? " +PROXY" : ""}`,
        sourceText(p),
        p.status === "published" ? "listening" : `${p.status}: ${p.error ?? ""}`,
        p.status === "published" ? `${p.connections}/${p.connectionsTotal}` : "-",
        bytes(p.bytesIn),
        bytes(p.bytesOut),
        p.container || "-",
      ]);
    }
    console.log(lines.length === 1 ? "no ports published" : table(lines));
  },
});

export const unpublish = defineCommand({
  meta: {
    name: "unpublish",
    description: "Unpublish ports published by hand, by the id edgeport publish / ls shows or by the same SPEC",
  },
  args: {
    target: { type: "positional", description: "ID or SPEC", required: true, valueHint: "ID|SPEC..." },
    ...apiArgs,
    ...logArgs,
  },
  async run({ args: a, data }) {
    applyLogArgs(a);
    const client = apiClient(a, contextOf(data));
    for (const t of (a._ as string[]).filter((s) => s !== "--")) {
      // an unknown id: 404 E_NOT_FOUND from this daemon, 200 {removed: false} from an older one
      const removed = await client.request("DELETE", `/v1/ports/${encodeURIComponent(t)}`, UnpublishReply).then(
        (r) => r.body.removed,
        (e: unknown) => {
          if (isEdgeportError(e) && e.code === "E_NOT_FOUND") return false;
          throw e;
        },
      );
      if (!removed) {
        console.error(`edgeport unpublish: ${t}: was not published (see edgeport ls)`);
        exitWith(EXIT.failed);
        continue;
      }
      console.log(`${t}: unpublished`);
    }
  },
});

export const status = defineCommand({
  meta: {
    name: "status",
    description:
      "Is the daemon up, is its pipe up, does it follow the engine, how many ports; exits 3 while the pipe or engine is down",
  },
  args: { json: { type: "boolean", description: "JSON instead of text" }, ...apiArgs, ...logArgs },
  async run({ args: a, data }) {
    applyLogArgs(a);
    const client = apiClient(a, contextOf(data));
    const r = await client.request("GET", "/v1/debug/state", StateReply);
    const st = r.body;
    if (a.json) {
      const { ports, ...rest } = st;
      delete (rest as { events?: unknown }).events;
      printJson({ api: client.url, ...rest, ports: ports.length });
    } else {
      const count = (s: string) => st.ports.filter((p) => p.status === s).length;
      console.log(
        [
          `daemon:  up (${client.url})`,
          `pipe:    ${st.pipe.up ? `up, ${st.pipe.peer ?? ""}` : "DOWN"} (${st.pipe.url})${st.pipe.lastFailure ? `: ${st.pipe.lastFailure}` : ""}`,
          `engine:  ${st.engine ? `${st.engine.connected ? "following" : "NOT CONNECTED"} ${st.engine.url}${st.engine.via ? ` ${st.engine.via}` : ""}` : "none (API and docker-proxy only)"}`,
          `binding: ${st.binding}`,
          `ports:   ${count("published")} published, ${count("failed")} failed, ${count("conflict")} in conflict (${st.containers} containers)`,
          ...(st.fds
            ? [
                `fds:     ${st.fds.open ?? "?"} open of the limit ${st.fds.limit}${st.fds.exhausted ? " (EXHAUSTED: accepting paused)" : ""}`,
              ]
            : []),
        ].join("\n"),
      );
    }
    // the daemon runs but cannot carry connections (or follow the engine): not healthy
    if (!st.pipe.up || (st.engine !== null && !st.engine.connected)) exitWith(EXIT.down);
  },
});
