/**
 * `edgeport docker-proxy`: a drop-in for dockerd's userland proxy (daemon.json
 * "userland-proxy-path"). dockerd runs it inside the VM for every published port with Go-style
 * flags and a pipe on fd 3: "0\n" once the port is published, "1\n<error>" otherwise. It asks the
 * host daemon, through the forwarder's VM-local control socket and the pipe, to publish the port on
 * the host (the host's binding policy picks the host address), then stays up until SIGTERM. While
 * it runs it holds the request open: if it dies, or the pipe breaks, the host releases the port;
 * it reconnects and publishes again when the pipe is back. Inside the VM it serves the published
 * address itself, as dockerd's own proxy does (src/relay/forwarder/local-proxy.ts): on the socket dockerd
 * passes as fd 4 with -use-listen-fd, else on one it binds.
 *
 * This file is usage and composition; the parts live in src/relay/forwarder/docker-proxy/.
 */
import { defineCommand } from "citty";
import { requestPublish } from "../relay/forwarder/docker-proxy/control-client.ts";
import { DEFAULT_CONTROL, LISTEN_FD, type ProxyArgs, parseProxyArgs } from "../relay/forwarder/docker-proxy/flags.ts";
import { holdPublished } from "../relay/forwarder/docker-proxy/publish-loop.ts";
import { statusPipe } from "../relay/forwarder/docker-proxy/status-pipe.ts";
import { type LocalProxy, startLocalProxy } from "../relay/forwarder/local-proxy.ts";
import { log } from "../shared/log.ts";
import { stop } from "./context.ts";

export {
  DEFAULT_CONTROL,
  looksLikeDockerd,
  type ProxyArgs,
  parseProxyArgs,
} from "../relay/forwarder/docker-proxy/flags.ts";

export const USAGE = `edgeport docker-proxy: dockerd's userland proxy, publishing on the host through edgeport

USAGE  edgeport docker-proxy -proto tcp|udp -host-ip IP -host-port N -container-ip IP -container-port N [--control URL]
       (dockerd runs it with exactly these flags when daemon.json has "userland-proxy-path" pointing at edgeport;
        flags may be written -flag value, -flag=value or --flag value)

OPTIONS
  -proto, -host-ip, -host-port, -container-ip, -container-port   the binding dockerd publishes
  -use-listen-fd                    serve the socket dockerd passes as fd 4 (newer dockerd); without it the proxy binds
                                    -host-ip:-host-port in the VM itself, as older dockerd expects
  --control URL                     the forwarder's --control-listen socket (default: EDGEPORT_CONTROL, else ${DEFAULT_CONTROL})
`;

export async function runDockerProxy(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  const plog = log.withTag("docker-proxy");
  const status = statusPipe();
  let a: ProxyArgs;
  try {
    a = parseProxyArgs(argv, env);
  } catch (e) {
    status.failed((e as Error).message);
    console.error((e as Error).message);
    return 2;
  }
  const what = `${a.hostIp}:${a.hostPort} -> ${a.containerIp}:${a.containerPort}/${a.proto}`;
  // in the VM first, as dockerd's proxy does: a port that cannot be served there fails `docker run`
  // before anything is published on the host
  let local: LocalProxy;
  try {
    local = await startLocalProxy({
      proto: a.proto,
      host: a.hostIp,
      port: a.hostPort,
      fd: a.listenFd ? LISTEN_FD : undefined,
      targetHost: a.containerIp,
      targetPort: a.containerPort,
      log: plog,
    });
  } catch (e) {
    const msg = `${what}: ${(e as Error).message}`;
    status.failed(msg);
    plog.error(msg);
    return 1;
  }
  try {
    const path = a.control.slice("unix://".length);
    return await holdPublished({
      request: () => requestPublish(path, a),
      status,
      signal: stop.signal,
      log: plog,
      what,
      control: a.control,
    });
  } finally {
    await local.close();
  }
}

/** For `edgeport --help`: the command is run by src/main.ts before citty (its flags are Go-style). */
export default defineCommand({
  meta: {
    name: "docker-proxy",
    description:
      "Drop-in for dockerd's userland proxy (daemon.json userland-proxy-path): publishes each docker -p on the host through the pipe",
  },
  run() {},
});
