/**
 * dockerd's flags for its userland proxy, as `edgeport docker-proxy` reads them: Go-style
 * (-flag value, -flag=value or --flag value), -use-listen-fd a Go bool flag. Pure.
 */
import { parseIp } from "../../../shared/address.ts";
import { EdgeportError } from "../../../shared/errors.ts";

/** the forwarder's VM-local control socket when neither --control nor EDGEPORT_CONTROL says otherwise */
export const DEFAULT_CONTROL = "unix:///run/edgeport/control.sock";

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
