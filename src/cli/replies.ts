/**
 * The control API's replies as the CLI reads them, checked with zod: whatever answers on the
 * socket is outside data (a fake daemon, an older edgeport), and a reply of the wrong shape is
 * an error that says so, not a crash. Loose objects: fields the CLI does not show may be added.
 */
import { z } from "zod";

export const PortReply = z.looseObject({
  id: z.string(),
  key: z.string(),
  host: z.string(),
  target: z.string(),
  proto: z.enum(["tcp", "udp", "unix"]),
  status: z.enum(["published", "failed", "conflict"]),
  error: z.string().optional(),
  source: z.looseObject({ kind: z.string(), containerName: z.string().optional() }),
  proxyProtocol: z.boolean().optional(),
  connections: z.number().optional(),
  connectionsTotal: z.number().optional(),
  bytesIn: z.number().optional(),
  bytesOut: z.number().optional(),
});
export type PortReply = z.infer<typeof PortReply>;

export const PortsReply = z.array(PortReply);

export const PublishReply = z.looseObject({ id: z.string(), created: z.boolean(), ports: z.array(PortReply) });

export const UnpublishReply = z.looseObject({ id: z.string(), removed: z.boolean() });

export const StateReply = z.looseObject({
  engine: z.looseObject({ url: z.string(), via: z.string().optional(), connected: z.boolean() }).nullable(),
  pipe: z.looseObject({
    url: z.string(),
    up: z.boolean(),
    peer: z.string().optional(),
    lastFailure: z.string().optional(),
  }),
  binding: z.string(),
  containers: z.number(),
  ports: z.array(PortReply),
  /** the daemon's file descriptors (absent from daemons before the fd guard) */
  fds: z.looseObject({ limit: z.number(), open: z.number().nullable().optional(), exhausted: z.boolean() }).optional(),
});

/** An error answer: `{code, message}` (4xx and 5xx). */
export const ErrorReply = z.looseObject({ code: z.string().max(100).optional(), message: z.string().optional() });
