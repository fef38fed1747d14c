/**
 * The firewall line: which backend `--firewall MODE` comes to here, and whether it can write.
 * Nothing is changed: nftables is asked to check a batch (nft --check), Windows whether this is
 * an administrator, macOS whether this is root (socketfilterfw changes need it).
 */
import { type FirewallMode, selectBackend } from "../../firewall/index.ts";
import { NFT } from "../../firewall/nftables.ts";
import type { Runner } from "../../firewall/types.ts";
import { powershellPath } from "../../firewall/windows.ts";
import { type CheckResult, fail, pass } from "./check.ts";

export interface FirewallDeps {
  mode: FirewallMode;
  run: Runner;
  platform: string;
  uid: number;
  env: Record<string, string | undefined>;
  exists: (path: string) => boolean;
  program: string;
}

const IS_ADMIN =
  "([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)";

/** Whether the backend could write a rule: null when it can, else why not. */
async function cannotWrite(name: string, d: FirewallDeps): Promise<string | null> {
  if (name === "nftables") {
    const r = await d.run([NFT, "--check", "-f", "-"], {
      stdin: "add table inet edgeport_doctor_check\n",
      mutates: false,
    });
    return r.code === 0
      ? null
      : `nft --check refused a batch: ${(r.stderr || r.stdout).trim().split("\n")[0] || `exit ${r.code}`}`;
  }
  if (name === "windows") {
    const r = await d.run([powershellPath(d.env), "-NoProfile", "-NonInteractive", "-Command", IS_ADMIN], {
      mutates: false,
    });
    return r.stdout.trim() === "True" ? null : "this is not an administrator: Windows Defender Firewall rules need one";
  }
  if (name === "macos") return d.uid === 0 ? null : "socketfilterfw changes need root";
  return null;
}

export async function firewallCheck(d: FirewallDeps): Promise<CheckResult> {
  const backend = selectBackend(d.mode, {
    run: d.run,
    program: d.program,
    platform: d.platform,
    uid: d.uid,
    env: d.env,
    exists: d.exists,
  });
  const chosen = d.mode === "auto" ? `--firewall auto chose ${backend.name}` : `--firewall ${backend.name}`;
  if (backend.name === "none")
    return pass(
      "firewall",
      `${chosen}: edgeport writes no firewall rules${d.mode === "auto" && d.platform === "linux" ? " (nftables needs root and nft)" : ""}; a port on a non-loopback address is open as far as the host's own firewall lets it`,
    );
  let why: string | null;
  try {
    why = await cannotWrite(backend.name, d);
  } catch (e) {
    why = (e as Error).message;
  }
  if (why)
    return fail(
      "firewall",
      `${chosen}, which cannot write: ${why}`,
      "run edgeport as root (administrator on Windows), or pass --firewall none and open the ports yourself",
      {
        code: "E_PERMISSION",
      },
    );
  let owned = "";
  try {
    owned = `, ${(await backend.list()).length} rule(s) of edgeport instances in place`;
  } catch {}
  return pass("firewall", `${chosen}, which can write${owned}`);
}
