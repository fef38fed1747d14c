/** zod schemas for the parts of the Docker Engine API edgeport reads. Unknown fields are stripped. */
import { z } from "zod";

const PortBinding = z.object({ HostIp: z.string().nullish(), HostPort: z.string().nullish() });
export type PortBinding = z.infer<typeof PortBinding>;
/** "80/tcp" -> bindings; the engine sends null for exposed but unpublished ports */
const PortMap = z.record(z.string(), z.array(PortBinding).nullish()).nullish();

export const ContainerInspect = z.object({
  Id: z.string(),
  Name: z.string().default(""),
  Created: z.string().optional(),
  State: z.object({ Running: z.boolean(), Paused: z.boolean().default(false), StartedAt: z.string().optional() }),
  Config: z.object({ Labels: z.record(z.string(), z.string()).nullish() }).nullish(),
  HostConfig: z
    .object({
      NetworkMode: z.string().optional(),
      PortBindings: PortMap,
      PublishAllPorts: z.boolean().nullish(),
    })
    .default({}),
  NetworkSettings: z
    .object({
      Ports: PortMap,
      Networks: z
        .record(
          z.string(),
          z.object({ IPAddress: z.string().nullish(), GlobalIPv6Address: z.string().nullish() }).nullish(),
        )
        .nullish(),
    })
    .default({}),
});
export type ContainerInspect = z.infer<typeof ContainerInspect>;

export const ContainerSummary = z.object({ Id: z.string(), State: z.string().optional() });
export const ContainerList = z.array(ContainerSummary);

export const EngineEvent = z.object({
  Type: z.string(),
  Action: z.string(),
  Actor: z.object({ ID: z.string(), Attributes: z.record(z.string(), z.string()).nullish() }),
  time: z.number().optional(),
  timeNano: z.number().optional(),
});
export type EngineEvent = z.infer<typeof EngineEvent>;

export const Version = z.object({
  ApiVersion: z.string(),
  Version: z.string().optional(),
  MinAPIVersion: z.string().optional(),
});

export const EngineNetwork = z.object({
  Name: z.string(),
  Id: z.string(),
  IPAM: z.object({ Config: z.array(z.object({ Subnet: z.string().optional() })).nullish() }).nullish(),
});
export type EngineNetwork = z.infer<typeof EngineNetwork>;
