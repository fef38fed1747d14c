/**
 * The running daemon's lines: does one answer on the control API (and who holds that socket), is
 * its pipe up, does it follow the engine. Pure: the API's answer and the socket's owner come in.
 */
import type { DaemonState } from "../../publisher/daemon.ts";
import { type CheckResult, fail, pass, skip, warn } from "./check.ts";
import { describeOwner, type SocketOwner } from "./sockets.ts";

export interface LogEvent {
  level: string;
  tag?: string;
  msg: string;
}

export interface DaemonFacts {
  /** the control API's URL */
  api: string;
  /** /v1/debug/state when it answered (with the recent log lines) */
  state?: DaemonState & { events?: readonly LogEvent[] };
  /** why it did not answer */
  error?: string;
  /** who holds the control socket, when the OS says */
  owner?: Omit<SocketOwner, "address" | "port"> | null;
  /** the engine URL doctor looks at, to compare with the daemon's */
  engineUrl: string;
}

/** The daemon's last warning about its pipe or engine: the state has no field for it (yet). */
const lastEvent = (events: readonly LogEvent[] | undefined, re: RegExp) =>
  [...(events ?? [])].reverse().find((e) => (e.level === "warn" || e.level === "error") && re.test(e.msg))?.msg;

function daemonLine(f: DaemonFacts): CheckResult {
  const holder = f.owner ? `, socket held by ${describeOwner(f.owner)}` : "";
  if (f.state) return pass("daemon", `edgeport run answers at ${f.api}${holder}`);
  const why = f.owner
    ? `the socket is held by ${describeOwner(f.owner)}, which does not answer (${f.error ?? "no answer"})`
    : `no edgeport daemon answers at ${f.api} (${f.error ?? "no answer"})`;
  return fail(
    "daemon",
    why,
    f.owner
      ? "that process is not an edgeport daemon or hangs: stop it, or give edgeport run another --api"
      : "start one: edgeport run --relay URL (or edgeport service install); if one runs elsewhere, point --api or EDGEPORT_API at it",
    { code: "E_DIAL" },
  );
}

export function daemonChecks(f: DaemonFacts): CheckResult[] {
  const out = [daemonLine(f)];
  const st = f.state;
  if (!st) return [...out, skip("daemon.pipe", "no daemon"), skip("daemon.engine", "no daemon")];
  if (st.pipe.up) out.push(pass("daemon.pipe", `up to ${st.pipe.url}: ${st.pipe.peer ?? ""}`));
  else {
    const why = lastEvent(st.events, /^pipe (down|lost|still down)/);
    out.push(
      fail(
        "daemon.pipe",
        `down (${st.pipe.url})${why ? `: ${why}` : ""}`,
        /authentication failed/.test(why ?? "")
          ? "give the daemon and the forwarder the same --token-file"
          : "start the forwarder in the VM and check the daemon's --relay; the daemon redials by itself",
        { code: /authentication/.test(why ?? "") ? "E_AUTH" : "E_PIPE_DOWN" },
      ),
    );
  }
  if (!st.engine)
    out.push(skip("daemon.engine", "follows no engine (--engine none): ports come from the API and docker-proxy"));
  else if (!st.engine.connected) {
    const why = lastEvent(st.events, /^engine /);
    out.push(
      fail(
        "daemon.engine",
        `not following ${st.engine.url}${why ? `: ${why}` : ""}`,
        "start the engine in the VM; the daemon reconnects by itself",
        {
          code: "E_DIAL",
        },
      ),
    );
  } else if (st.engine.url !== f.engineUrl)
    out.push(
      warn(
        "daemon.engine",
        `following ${st.engine.url}, not ${f.engineUrl} (the engine doctor looked at)`,
        "give doctor the daemon's --engine or --config, so both look at the same engine",
      ),
    );
  else out.push(pass("daemon.engine", `following ${st.engine.url}${st.engine.via ? ` ${st.engine.via}` : ""}`));
  return out;
}
