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
 */
import { closeSync, writeSync } from "node:fs";
import type { Socket } from "bun";
import { defineCommand } from "citty";
import { type LocalProxy, startLocalProxy } from "../relay/forwarder/local-proxy.ts";
import { parseIp } from "../shared/address.ts";
import { EdgeportError } from "../shared/errors.ts";
import { log } from "../shared/log.ts";
import { stop } from "./context.ts";

export const DEFAULT_CONTROL = "unix:///run/edgeport/control.sock";

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

export interface ProxyArgs {
  proto: "tcp" | "udp";
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
  control: string;
  /** dockerd passed the bound socket as fd 4 */
  listenFd: boolean;
}

/** where dockerd puts the bound socket with -use-listen-fd (fd 3 is the status pipe) */
export const LISTEN_FD = 4;

const FLAGS = new Set(["proto", "host-ip", "host-port", "container-ip", "container-port", "use-listen-fd", "control"]);

/** True when argv looks like dockerd calling its userland proxy (edgeport used as the proxy binary itself). */
export const looksLikeDockerd = (argv: string[]): boolean =>
  argv.length > 0 && /^--?(proto|host-ip|host-port|container-ip|container-port)(=|$)/.test(argv[0]!);

export function parseProxyArgs(argv: string[], env: Record<string, string | undefined>): ProxyArgs {
  const v: Record<string, string> = {};
  let listenFd = false;
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) throw new EdgeportError("E_BAD_ARG", `docker-proxy: unexpected argument "${argv[i]}"`);
    const name = m[1]!;
    if (!FLAGS.has(name)) throw new EdgeportError("E_BAD_ARG", `docker-proxy: unknown flag -${name}`);
    if (name === "use-listen-fd") {
      // a Go bool flag: -use-listen-fd, or -use-listen-fd=VALUE with what Go's strconv.ParseBool takes
      const TRUE = ["1", "t", "T", "TRUE", "true", "True"];
      const FALSE = ["0", "f", "F", "FALSE", "false", "False"];
      if (m[2] !== undefined && !TRUE.includes(m[2]) && !FALSE.includes(m[2]))
        throw new EdgeportError("E_BAD_ARG", `docker-proxy: -use-listen-fd="${m[2]}" is not true or false`);
      listenFd = m[2] === undefined || TRUE.includes(m[2]);
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new EdgeportError("E_BAD_ARG", `docker-proxy: -${name} needs a value`);
    v[name] = value;
  }
  const need = (k: string) => {
    if (v[k] === undefined) throw new EdgeportError("E_BAD_ARG", `docker-proxy: -${k} is missing`);
    return v[k]!;
  };
  const port = (k: string) => {
    const n = Number(need(k));
    if (!/^\d+$/.test(v[k]!) || n < 1 || n > 65535)
      throw new EdgeportError("E_BAD_ARG", `docker-proxy: -${k} "${v[k]}" is not a port 1-65535`);
    return n;
  };
  const proto = need("proto");
  if (proto !== "tcp" && proto !== "udp")
    throw new EdgeportError("E_BAD_ARG", `docker-proxy: -proto "${proto}" is not tcp or udp (sctp is not relayed)`);
  const ip = (k: string) => {
    try {
      return parseIp(need(k)).text;
    } catch (e) {
      throw new EdgeportError("E_BAD_ARG", `docker-proxy: -${k}: ${(e as Error).message}`);
    }
  };
  const control = v.control ?? env.EDGEPORT_CONTROL ?? DEFAULT_CONTROL;
  if (!control.startsWith("unix:///"))
    throw new EdgeportError("E_BAD_ARG", `docker-proxy: --control "${control}" must be unix:///path`);
  return {
    proto,
    hostIp: ip("host-ip"),
    hostPort: port("host-port"),
    containerIp: ip("container-ip"),
    containerPort: port("container-port"),
    control,
    listenFd,
  };
}

/** dockerd's status pipe (fd 3): absent when run by hand. */
function tellDockerd(text: string): void {
  try {
    writeSync(3, text);
    closeSync(3);
  } catch {
    // not started by dockerd
  }
}

interface Reply {
  ok: boolean;
  id?: string;
  ports?: string[];
  error?: string;
}

/** One connection: sends the request, resolves with the reply; `closed` resolves when the host side ends it. */
async function request(a: ProxyArgs): Promise<{ reply: Reply; socket: Socket<undefined>; closed: Promise<void> }> {
  let buf = "";
  const { promise: replied, resolve: onReply, reject: onFail } = Promise.withResolvers<Reply>();
  const { promise: closed, resolve: onClosed } = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    unix: a.control.slice(7),
    allowHalfOpen: true,
    socket: {
      data(_s, d) {
        buf += d.toString();
        const nl = buf.indexOf("\n");
        if (nl >= 0) {
          try {
            onReply(JSON.parse(buf.slice(0, nl)) as Reply);
          } catch {
            onFail(new Error(`the host answered something that is not a reply: ${buf.slice(0, 80)}`));
          }
          buf = buf.slice(nl + 1);
        }
      },
      end(s) {
        onFail(new Error("the host closed the control channel"));
        s.end();
      },
      close() {
        onFail(new Error("the control channel closed"));
        onClosed();
      },
      error() {},
    },
  });
  socket.write(
    `${JSON.stringify({ op: "publish", proto: a.proto, hostIp: a.hostIp, hostPort: a.hostPort, containerIp: a.containerIp, containerPort: a.containerPort })}\n`,
  );
  const timeout = setTimeout(() => onFail(new Error("no answer from the host within 15 s")), 15_000);
  try {
    return { reply: await replied, socket, closed };
  } finally {
    clearTimeout(timeout);
  }
}

export async function runDockerProxy(argv: string[]): Promise<number> {
  const plog = log.withTag("docker-proxy");
  let a: ProxyArgs;
  try {
    a = parseProxyArgs(argv, process.env);
  } catch (e) {
    tellDockerd(`1\n${(e as Error).message}`);
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
    tellDockerd(`1\n${msg}`);
    plog.error(msg);
    return 1;
  }
  try {
    return await publishOnHost(a, what, plog);
  } finally {
    await local.close();
  }
}

/** Publishes on the host through the control socket and holds it until SIGTERM: the exit code. */
async function publishOnHost(a: ProxyArgs, what: string, plog: typeof log): Promise<number> {
  let first = true;
  let delay = 100;
  while (!stop.signal.aborted) {
    let conn: Awaited<ReturnType<typeof request>>;
    try {
      conn = await request(a);
    } catch (e) {
      const msg = `${what}: cannot reach the host through ${a.control}: ${(e as { code?: string }).code ?? (e as Error).message}`;
      if (first) {
        tellDockerd(`1\n${msg}`);
        plog.error(msg);
        return 1;
      }
      plog.warn(`${msg}; retrying`);
      await Promise.race([
        Bun.sleep(delay),
        new Promise((r) => stop.signal.addEventListener("abort", r, { once: true })),
      ]);
      delay = Math.min(delay * 2, 2000);
      continue;
    }
    if (!conn.reply.ok) {
      const msg = `${what}: the host refused: ${conn.reply.error ?? "no reason"}`;
      conn.socket.end();
      if (first) {
        tellDockerd(`1\n${msg}`);
        plog.error(msg);
        return 1;
      }
      plog.warn(`${msg}; retrying`);
      await Bun.sleep(delay);
      delay = Math.min(delay * 2, 2000);
      continue;
    }
    plog.info(`${what}: published on the host at ${(conn.reply.ports ?? []).join(", ")} (${conn.reply.id})`);
    if (first) tellDockerd("0\n");
    first = false;
    delay = 100;
    const stopped = new Promise<"stop">((r) =>
      stop.signal.aborted ? r("stop") : stop.signal.addEventListener("abort", () => r("stop"), { once: true }),
    );
    const how = await Promise.race([conn.closed.then(() => "closed" as const), stopped]);
    if (how === "stop") {
      conn.socket.end(); // the host releases the port when the channel ends
      await Promise.race([conn.closed, Bun.sleep(2000)]);
      plog.info(`${what}: unpublished`);
      return 0;
    }
    plog.warn(`${what}: the control channel to the host closed (pipe down?); publishing again`);
  }
  return 0;
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
