import { defineCommand } from "citty";
import { VERSION } from "./common.ts";

export const main = defineCommand({
  meta: {
    name: "edgeport",
    version: VERSION,
    description:
      "Publish container ports from a desktop VM's engine on the host, over one multiplexed pipe (vpnkit-compatible)",
  },
  subCommands: {
    forwarder: () => import("./forwarder.ts").then((m) => m.default),
    run: () => import("./run.ts").then((m) => m.default),
    publish: () => import("./publish.ts").then((m) => m.default),
    unpublish: () => import("./ports.ts").then((m) => m.unpublish),
    ls: () => import("./ports.ts").then((m) => m.ls),
    status: () => import("./ports.ts").then((m) => m.status),
    "docker-proxy": () => import("./docker-proxy.ts").then((m) => m.default),
    firewall: () => import("./firewall.ts").then((m) => m.default),
    version: () => import("./version.ts").then((m) => m.default),
    service: () => import("./service.ts").then((m) => m.default),
    doctor: () => import("./doctor.ts").then((m) => m.doctor),
    why: () => import("./doctor.ts").then((m) => m.why),
  },
});
