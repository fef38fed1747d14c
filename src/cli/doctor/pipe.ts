/** The pipe's lines from one trial session: reachable, handshake, the peer, the secret. Pure. */
import { type CheckResult, fail, pass, skip, warn } from "./check.ts";

export interface PipeProbe {
  url: string;
  /** the transport connected */
  reached: boolean;
  /** why the dial or the session failed */
  error?: string;
  /** the vpnkit handshake completed */
  handshake: boolean;
  /** what the peer announced (edgeport: false for a plain vpnkit peer) */
  peer?: { edgeport: boolean; version?: string; ext: string[]; window?: number };
  /** the session became ready: secrets matched, or neither end has one */
  ready: boolean;
  /** this end offered a secret */
  secret: boolean;
}

const FORWARDER_FIX =
  "start the forwarder in the VM (edgeport forwarder --listen URL --engine ...), and check that --relay names the address it listens on";

export function pipeChecks(p: PipeProbe, ourVersion: string): CheckResult[] {
  if (!p.reached)
    return [
      fail("pipe.reach", `${p.url}: cannot connect: ${p.error ?? "no answer"}`, FORWARDER_FIX, { code: "E_DIAL" }),
      skip("pipe.handshake", "not reached"),
      skip("pipe.peer", "not reached"),
      skip("pipe.secret", "not reached"),
    ];
  const out = [pass("pipe.reach", `${p.url} connects`)];
  if (!p.handshake) {
    out.push(
      fail(
        "pipe.handshake",
        `no vpnkit handshake: ${p.error ?? "the peer said nothing"}`,
        "the address answers but is not an edgeport forwarder or vpnkit: check the port or path in --relay",
        { code: "E_PROTOCOL" },
      ),
      skip("pipe.peer", "no handshake"),
      skip("pipe.secret", "no handshake"),
    );
    return out;
  }
  out.push(pass("pipe.handshake", "vpnkit handshake completed"));
  const peer = p.peer;
  if (!peer?.edgeport)
    out.push(
      pass("pipe.peer", "plain vpnkit peer: 64 KiB windows, no extensions (no keepalive, open results or secret)"),
    );
  else {
    const what = `edgeport ${peer.version ?? "(no version)"}, window ${peer.window ?? "?"} B, extensions ${peer.ext.join(",") || "none"}`;
    out.push(
      peer.version && peer.version !== ourVersion
        ? warn("pipe.peer", `${what}; this end is ${ourVersion}`, "run the same edgeport version on both ends")
        : pass("pipe.peer", what),
    );
  }
  if (p.ready)
    out.push(pass("pipe.secret", p.secret ? "the pipe secret was accepted" : "neither end uses a pipe secret"));
  else if (/authentication failed/.test(p.error ?? ""))
    out.push(
      fail(
        "pipe.secret",
        p.error!,
        'give both ends the same secret: --token-file here (or "token-file" in the config) and the forwarder\'s --token-file',
        { code: "E_AUTH" },
      ),
    );
  else out.push(fail("pipe.secret", `the session ended before it was ready: ${p.error ?? "closed"}`, FORWARDER_FIX));
  return out;
}
