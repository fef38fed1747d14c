/**
 * Reading a token or pipe secret file (--api-token-file, --token-file) the way ssh reads a key
 * (issue 16, defect 6): a file that group or others may read, or that belongs to another user
 * (root's is fine), is refused, naming the file and the chmod that fixes it. A 0644 token let any
 * local user publish ports through a root daemon. On Windows the ACL is not checked
 * (docs/security.md): keep the file in your profile.
 */
import { readFileSync, statSync } from "node:fs";
import { EdgeportError, errnoOf } from "./errors.ts";

export interface SecretOwner {
  /** the uid edgeport runs as */
  uid: number;
  platform: string;
}

/** Why this file may not hold a secret, or null. `st` is the file's stat (links followed). */
export function secretFileProblem(file: string, st: { uid: number; mode: number }, who: SecretOwner): string | null {
  if (who.platform === "win32") return null;
  if (st.uid !== who.uid && st.uid !== 0)
    return `${file} belongs to uid ${st.uid}, not to you (uid ${who.uid}) or root: another user can change the secret; use a file of your own (and chmod 600 ${file})`;
  if (st.mode & 0o077)
    return `${file} may be read by group or others (mode 0${(st.mode & 0o777).toString(8)}), so any local user can use the secret: chmod 600 ${file}`;
  return null;
}

/** The file's text, trimmed, after the owner and mode checks; errors name the flag and the file. */
export function readSecretFile(flag: string, file: string, who: SecretOwner): string {
  let text: string;
  let st: { uid: number; mode: number };
  try {
    st = statSync(file);
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new EdgeportError("E_BAD_ARG", `${flag}: cannot read ${file}: ${errnoOf(e) ?? (e as Error).message}`);
  }
  const problem = secretFileProblem(file, st, who);
  if (problem) throw new EdgeportError("E_PERMISSION", `${flag}: refusing ${problem}`);
  return text.trim();
}
