/** What the daemon (daemon.ts) is built from. */
import type { ConsolaInstance } from "consola";
import type { Engine } from "../events/engine.ts";
import type { BindingPolicy } from "../events/wanted.ts";
import type { Firewall } from "../firewall/index.ts";
import type { RelayClient } from "../relay/host/relay-client.ts";
import type { PortRules } from "../shared/config.ts";
import type { FdGuard } from "./fd-guard.ts";
import type { PortStore } from "./port-store.ts";
import type { OpenListener } from "./port-table.ts";
import type { UdpOptions } from "./udp-listener.ts";
import type { VmSource } from "./vm-source.ts";

export interface DaemonOptions {
  /** null: no engine to follow (ports come only from the API and docker-proxy) */
  engine: Engine | null;
  relay: RelayClient;
  binding: BindingPolicy;
  resyncMs: number;
  pipeWaitMs: number;
  udp: UdpOptions;
  /** told about every change of the bound listeners (applies in the background) */
  firewall?: Firewall;
  /** ignore rules and reserved ports from the config */
  rules?: PortRules;
  log: ConsolaInstance;
  /** opens a host listener (default: the real TCP and UDP listeners on the relay) */
  openListener?: OpenListener;
  /** pauses accepting near the file descriptor limit, and says the limit in the state (default: the process's) */
  fdGuard?: FdGuard;
  /** the VM's own listeners, as the forwarder reports them */
  vm?: VmSource;
  version?: string; // the daemon's, for the state and /metrics
  /** keeps the ad-hoc specs across restarts (the state file); restored when run() starts */
  store?: PortStore;
}
