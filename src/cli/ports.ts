/** `edgeport ls`, `edgeport unpublish`, `edgeport status`: the daemon seen through its control API. */
import { defineCommand } from "citty";
import type { DaemonState, PortState } from "../publisher/daemon.ts";
import { apiArgs, apiClient, apiError } from "./client.ts";
import { applyLogArgs, EXIT, exitWith, logArgs, printJson } from "./common.ts";

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
  meta: { name: "ls", description: "List the ports the daemon publishes: where from, state, traffic" },
  args: { json: { type: "boolean", description: "The API's JSON instead of a table" }, ...apiArgs, ...logArgs },
  async run({ args: a }) {
    applyLogArgs(a);
    const r = await apiClient(a).request<PortState[]>("GET", "/v1/ports");
    if (r.status !== 200) throw apiError(r.status, r.body as never);
    if (a.json) {
      printJson(r.body);
      return;
    }
    const rows = [["ID", "PORTS", "SOURCE", "STATE", "CONNS", "IN", "OUT"]];
    for (const p of r.body) {
      const source = p.source.kind === "container" ? `container ${p.source.containerName}` : p.source.kind;
      const state = p.status === "published" ? "listening" : `${p.status}: ${p.error ?? ""}`;
      rows.push([
        p.id,
        `${p.host}->${p.target}/${p.proto}${p.proxyProtocol ? " +PROXY" : ""}`,
        source,
        state,
        p.status === "published" ? `${p.connections ?? 0}/${p.connectionsTotal ?? 0}` : "-",
        bytes(p.bytesIn),
        bytes(p.bytesOut),
      ]);
    }
    console.log(rows.length === 1 ? "no ports published" : table(rows));
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
  async run({ args: a }) {
    applyLogArgs(a);
    const client = apiClient(a);
    for (const t of (a._ as string[]).filter((s) => s !== "--")) {
      const r = await client.request<{ id: string; removed: boolean; code?: string }>(
        "DELETE",
        `/v1/ports/${encodeURIComponent(t)}`,
      );
      // an unknown id: 200 {removed: false} from this daemon, 404 E_NOT_FOUND from a newer one
      if ((r.status === 200 && !r.body.removed) || (r.status === 404 && r.body.code === "E_NOT_FOUND")) {
        console.error(`edgeport unpublish: ${t}: was not published (see edgeport ls)`);
        exitWith(EXIT.failed);
        continue;
      }
      if (r.status !== 200) throw apiError(r.status, r.body as never);
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
  async run({ args: a }) {
    applyLogArgs(a);
    const client = apiClient(a);
    const r = await client.request<DaemonState>("GET", "/v1/debug/state");
    if (r.status !== 200) throw apiError(r.status, r.body as never);
    const st = r.body;
    if (a.json) {
      const { ports, ...rest } = st as DaemonState & { events?: unknown };
      delete (rest as { events?: unknown }).events;
      printJson({ api: client.url, ...rest, ports: ports.length });
    } else {
      const count = (s: string) => st.ports.filter((p) => p.status === s).length;
      console.log(
        [
          `daemon:  up (${client.url})`,
          `pipe:    ${st.pipe.up ? `up, ${st.pipe.peer ?? ""}` : "DOWN"} (${st.pipe.url})`,
          `engine:  ${st.engine ? `${st.engine.connected ? "following" : "NOT CONNECTED"} ${st.engine.url}` : "none (API and docker-proxy only)"}`,
          `binding: ${st.binding}`,
          `ports:   ${count("published")} published, ${count("failed")} failed, ${count("conflict")} in conflict (${st.containers} containers)`,
        ].join("\n"),
      );
    }
    // the daemon runs but cannot carry connections (or follow the engine): not healthy
    if (!st.pipe.up || (st.engine !== null && !st.engine.connected)) exitWith(EXIT.down);
  },
});
