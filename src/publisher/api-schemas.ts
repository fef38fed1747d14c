/**
 * The control API's bodies as zod schemas: the one request body it reads (checked with them) and
 * the replies it sends (documented with them: docs/openapi.json is generated from this file). The
 * reply schemas must stay equal to the daemon's types; the checks at the end fail to compile when
 * a field is added to one and not the other. Pure.
 */
import { z } from "zod";
import { BINDING_POLICIES } from "../events/wanted.ts";
import type { DaemonState, FdState, PortState } from "./port-rows.ts";
import type { UdpOptions, UdpStats } from "./udp-listener.ts";

const count = z.number().int().min(0);

export const PublishBody = z
  .strictObject({
    spec: z.string().min(1).max(400).meta({
      description:
        "[HOST_IP:]HOST_PORT:TARGET:TARGET_PORT[/udp]; TARGET an IP or a container's name or id; or a socket forward unix:///HOST_PATH:unix:///VM_PATH",
    }),
    proxyProtocol: z
      .boolean()
      .optional()
      .meta({ description: "every connection starts with a PROXY protocol v2 header (TCP specs only)" }),
  })
  .meta({ id: "PublishBody", examples: [{ spec: "8080:web:80" }, { spec: "127.0.0.1:5432:10.0.0.5:5432" }] });
export type PublishBody = z.infer<typeof PublishBody>;

export const UdpStatsSchema = z
  .object({
    flows: count,
    flowsOpened: count,
    flowsExpired: count,
    flowsEvicted: count,
    flowsFailed: count,
    datagramsIn: count,
    datagramsOut: count,
    bytesIn: count,
    bytesOut: count,
    dropped: count,
    idleTimeoutMs: count,
    maxFlows: count,
  })
  .meta({ id: "UdpStats" });

export const PortRow = z
  .object({
    key: z
      .string()
      .meta({ description: "the one key of a host port: proto, address, port (unix:/PATH for a socket forward)" }),
    id: z.string().meta({ description: "the entry's id (ad-hoc, docker-proxy) or c-<container id>" }),
    proto: z
      .enum(["tcp", "udp", "unix"])
      .meta({ description: "unix: a socket forward; host and target are unix:///PATH" }),
    source: z.object({
      kind: z.enum(["container", "ad-hoc", "docker-proxy", "vm"]),
      containerId: z.string().optional(),
      containerName: z.string().optional(),
      process: z.string().optional().meta({ description: "vm: the process that listens in the VM, when known" }),
      persisted: z
        .boolean()
        .optional()
        .meta({ description: "an ad-hoc port kept in the daemon's state file across restarts" }),
    }),
    host: z.string().meta({ description: "the host address and port, [v6] bracketed" }),
    target: z.string().meta({ description: "where connections go in the VM" }),
    container: z.string(),
    status: z.enum(["published", "failed", "conflict"]),
    error: z.string().optional().meta({ description: "why it is failed or in conflict" }),
    code: z.string().optional().meta({ description: "the error code of a failed bind" }),
    proxyProtocol: z.boolean().optional(),
    connections: count.optional().meta({ description: "open connections (TCP) or flows (UDP)" }),
    connectionsTotal: count.optional(),
    bytesIn: count.optional(),
    bytesOut: count.optional(),
    udp: UdpStatsSchema.optional(),
  })
  .meta({ id: "PortRow" });

export const PortRows = z.array(PortRow).meta({ id: "PortRows" });

/** One id's rows: a spec's every host port (both loopbacks, a range), or a container's ports. */
export const PortEntry = z.object({ id: z.string(), ports: z.array(PortRow) }).meta({ id: "PortEntry" });

export const PublishResult = PortEntry.extend({
  created: z.boolean().meta({ description: "false when the same spec was already published (200)" }),
}).meta({ id: "PublishResult" });

export const UnpublishResult = z.object({ id: z.string(), removed: z.literal(true) }).meta({ id: "UnpublishResult" });

export const FdStateSchema = z
  .object({
    limit: count,
    hardLimit: count.optional(),
    open: count.optional(),
    exhausted: z.boolean().meta({ description: "accepting is paused at the limit" }),
  })
  .meta({ id: "FdState" });

export const Health = z
  .object({
    ok: z.boolean(),
    pipe: z.boolean(),
    engine: z.boolean().nullable().meta({ description: "null under --engine none" }),
    fds: FdStateSchema.optional(),
    pid: z.number().int().optional(),
  })
  .meta({ id: "Health" });

export const VmListener = z
  .object({
    proto: z.enum(["tcp", "udp"]),
    address: z.string().meta({ description: "the VM address it listens on" }),
    port: z.number().int().min(0).max(65535),
    process: z.string().optional(),
    status: z.enum(["wanted", "ignored", "taken"]),
    reason: z
      .string()
      .optional()
      .meta({ description: "why it is not published (the rule, or the source that has the port)" }),
  })
  .meta({ id: "VmListener" });

export const State = z
  .object({
    engine: z
      .object({
        url: z.string(),
        via: z.string().optional().meta({ description: "how a vm:/// engine is reached: through the pipe URL" }),
        connected: z.boolean(),
      })
      .nullable(),
    pipe: z.object({
      url: z.string(),
      up: z.boolean(),
      peer: z.string().optional(),
      lastFailure: z.string().optional(),
      reconnects: count.optional().meta({ description: "pipes dialled again after one was lost" }),
      resets: count.optional().meta({ description: "ready pipes that ended without the daemon closing them" }),
      failures: count.optional().meta({ description: "dial attempts that failed" }),
    }),
    version: z.string().optional().meta({ description: "the daemon's version" }),
    binding: z.enum(BINDING_POLICIES),
    udp: z.object({ idleMs: count, maxFlows: count }),
    containers: count,
    ports: z.array(PortRow),
    fds: FdStateSchema.optional(),
    vmListeners: z
      .array(VmListener)
      .optional()
      .meta({ description: "what the forwarder reports listening in the VM (forwarder --report-listeners)" }),
  })
  .meta({ id: "State" });

export const DebugState = State.extend({
  events: z.array(z.object({ time: z.string(), level: z.string(), tag: z.string().optional(), msg: z.string() })),
}).meta({ id: "DebugState", description: "the state plus the last 300 log events" });

export const Issue = z.object({
  path: z.string().meta({ description: 'the field, dotted ("spec"); "" for the body itself' }),
  message: z.string(),
});
export type Issue = z.infer<typeof Issue>;

/** Every error answer, 4xx and 5xx. */
export const ApiError = z
  .object({
    code: z.string().meta({ description: "stable: E_BAD_ARG, E_BAD_SPEC, E_NOT_FOUND, ... (docs/operations.md)" }),
    message: z.string(),
    issues: z.array(Issue).optional().meta({ description: "every problem of a request body (400 E_BAD_ARG)" }),
  })
  .meta({ id: "Error" });
export type ApiError = z.infer<typeof ApiError>;

/** GET /v1/openapi.json's reply, described only so far. */
export const OpenApiDoc = z
  .looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) })
  .meta({ id: "OpenApiDocument" });

/** Every schema the document names (components.schemas). */
export const API_SCHEMAS = [
  PublishBody,
  PortRow,
  PortRows,
  UdpStatsSchema,
  VmListener,
  PortEntry,
  PublishResult,
  UnpublishResult,
  FdStateSchema,
  Health,
  State,
  DebugState,
  ApiError,
  OpenApiDoc,
] as const;

/** true when A and B are the same type (not merely assignable: an added optional field counts). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
// the schemas above describe the daemon's types exactly (docs/openapi.json cannot drift from them)
true satisfies Same<z.infer<typeof PortRow>, PortState>;
true satisfies Same<z.infer<typeof UdpStatsSchema>, UdpStats>;
true satisfies Same<z.infer<typeof FdStateSchema>, FdState>;
true satisfies Same<z.infer<typeof State>["udp"], UdpOptions>;
true satisfies Same<z.infer<typeof State>, DaemonState>;
